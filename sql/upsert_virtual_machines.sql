-- The cloud's VM list as it stands: listed VMs refreshed, vanished (404) and unlisted ones marked deleted.
INSERT OR REPLACE INTO virtual_machines BY NAME
SELECT $cloud AS cloud, l.id, l.identifier, l.label, l.hostname, l.user_id,
       coalesce(v.first_seen_at, $synced_at) AS first_seen_at,
       $synced_at AS last_seen_at,
       CASE WHEN l.status = 'vanished' THEN coalesce(v.deleted_at, $synced_at) END AS deleted_at
FROM listed_vms AS l
LEFT JOIN (SELECT * FROM virtual_machines WHERE cloud = $cloud) AS v USING (id);

UPDATE virtual_machines SET deleted_at = $synced_at
WHERE cloud = $cloud AND deleted_at IS NULL AND id NOT IN (SELECT id FROM listed_vms);
