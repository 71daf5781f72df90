-- The VMs the protection_gaps report lists, each with its cloud and why.
SELECT cloud, virtual_machine_id, label, user_login, backups, age_days, reason
FROM protection_gaps
ORDER BY cloud, virtual_machine_id;
