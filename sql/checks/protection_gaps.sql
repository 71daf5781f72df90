-- The VMs the protection_gaps report lists, each with why.
SELECT virtual_machine_id, label, user_login, backups, age_days, reason
FROM protection_gaps
ORDER BY virtual_machine_id;
