-- Logins for the reports, from the cloud's admin-only /users list.
INSERT OR REPLACE INTO users BY NAME
SELECT $cloud AS cloud, id, login, email, first_name, last_name, status, $synced_at AS synced_at
FROM read_parquet($users_file);
