-- Facts about the warehouse itself: above all the API it is filled from.
CREATE TABLE warehouse_meta (
    key    VARCHAR PRIMARY KEY,
    value  VARCHAR NOT NULL
);
