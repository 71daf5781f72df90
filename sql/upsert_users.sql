-- Logins for the reports, from the admin-only /users list.
INSERT OR REPLACE INTO users BY NAME
SELECT id, login, email, first_name, last_name, status, $synced_at AS synced_at
FROM read_parquet($users_file);
