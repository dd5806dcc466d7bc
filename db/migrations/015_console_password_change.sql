-- The console's user management (supervisor/views/users.py): a password an admin set for
-- someone is theirs to replace at their next sign-in, before anything else.
ALTER TABLE console_users ADD COLUMN must_change_password boolean NOT NULL DEFAULT false;
