-- quayctl migration 3: superusers recorded in the database, in addition to
-- SUPER_USERS from config.yaml (Quay keeps them in config only). Our own
-- table, hence the quayctl_ prefix. ON DELETE CASCADE so that Quay, which
-- knows nothing of this table, can still delete a user in a shared database.

CREATE TABLE IF NOT EXISTS quayctl_superuser (
	id {{.PK}},
	user_id INTEGER NOT NULL,
	created {{.DateTime}} NOT NULL,
	CONSTRAINT pk_quayctl_superuser PRIMARY KEY (id),
	CONSTRAINT fk_quayctl_superuser_user_id_user FOREIGN KEY (user_id) REFERENCES "user" (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX IF NOT EXISTS quayctl_superuser_user_id ON quayctl_superuser (user_id);
