-- quayctl migration 5: Quay's repository notifications and in-app
-- notifications: the event, method and kind lookup tables with Quay's rows,
-- repositorynotification (what to tell whom when something happens to a
-- repository) and notification (messages shown to a user). Names, columns
-- and indexes follow Quay's schema; rows are added by name when missing, so
-- on a database Quay created this adds nothing. Deliveries go through
-- queueitem under the queue name "notification/", as in Quay.

CREATE TABLE IF NOT EXISTS externalnotificationevent (
	id {{.PK}},
	name VARCHAR(255) NOT NULL,
	CONSTRAINT pk_externalnotificationevent PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS externalnotificationevent_name ON externalnotificationevent (name);

CREATE TABLE IF NOT EXISTS externalnotificationmethod (
	id {{.PK}},
	name VARCHAR(255) NOT NULL,
	CONSTRAINT pk_externalnotificationmethod PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS externalnotificationmethod_name ON externalnotificationmethod (name);

CREATE TABLE IF NOT EXISTS notificationkind (
	id {{.PK}},
	name VARCHAR(255) NOT NULL,
	CONSTRAINT pk_notificationkind PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS notificationkind_name ON notificationkind (name);

CREATE TABLE IF NOT EXISTS notification (
	id {{.PK}},
	uuid VARCHAR(255) NOT NULL,
	kind_id INTEGER NOT NULL,
	target_id INTEGER NOT NULL,
	metadata_json TEXT NOT NULL,
	created {{.DateTime}} NOT NULL,
	dismissed BOOLEAN NOT NULL,
	lookup_path VARCHAR(255),
	CONSTRAINT pk_notification PRIMARY KEY (id),
	CONSTRAINT fk_notification_kind_id_notificationkind FOREIGN KEY (kind_id) REFERENCES notificationkind (id),
	CONSTRAINT fk_notification_target_id_user FOREIGN KEY (target_id) REFERENCES "user" (id)
);
CREATE INDEX IF NOT EXISTS notification_created ON notification (created);
CREATE INDEX IF NOT EXISTS notification_kind_id ON notification (kind_id);
CREATE INDEX IF NOT EXISTS notification_lookup_path ON notification (lookup_path);
CREATE INDEX IF NOT EXISTS notification_target_id ON notification (target_id);
CREATE INDEX IF NOT EXISTS notification_uuid ON notification (uuid);

CREATE TABLE IF NOT EXISTS repositorynotification (
	id {{.PK}},
	uuid VARCHAR(255) NOT NULL,
	repository_id INTEGER NOT NULL,
	event_id INTEGER NOT NULL,
	method_id INTEGER NOT NULL,
	title VARCHAR(255),
	config_json TEXT NOT NULL,
	event_config_json TEXT NOT NULL,
	number_of_failures INTEGER DEFAULT 0 NOT NULL,
	last_ran_ms BIGINT,
	CONSTRAINT pk_repositorynotification PRIMARY KEY (id),
	CONSTRAINT fk_repositorynotification_event_id_externalnotificationevent FOREIGN KEY (event_id) REFERENCES externalnotificationevent (id),
	CONSTRAINT fk_repositorynotification_method_id_externalnotificationmethod FOREIGN KEY (method_id) REFERENCES externalnotificationmethod (id),
	CONSTRAINT fk_repositorynotification_repository_id_repository FOREIGN KEY (repository_id) REFERENCES repository (id)
);
CREATE INDEX IF NOT EXISTS repositorynotification_event_id ON repositorynotification (event_id);
CREATE INDEX IF NOT EXISTS repositorynotification_last_ran_ms ON repositorynotification (last_ran_ms);
CREATE INDEX IF NOT EXISTS repositorynotification_method_id ON repositorynotification (method_id);
CREATE INDEX IF NOT EXISTS repositorynotification_repository_id ON repositorynotification (repository_id);
CREATE INDEX IF NOT EXISTS repositorynotification_uuid ON repositorynotification (uuid);

INSERT INTO externalnotificationevent (name)
SELECT v.column1 FROM (VALUES
	('build_failure'),
	('build_queued'),
	('build_start'),
	('build_success'),
	('repo_push'),
	('vulnerability_found'),
	('build_cancelled'),
	('repo_mirror_sync_started'),
	('repo_mirror_sync_success'),
	('repo_mirror_sync_failed'),
	('repo_image_expiry'),
	('quota_warning'),
	('quota_error')
) AS v
WHERE NOT EXISTS (SELECT 1 FROM externalnotificationevent e WHERE e.name = v.column1);

INSERT INTO externalnotificationmethod (name)
SELECT v.column1 FROM (VALUES
	('email'),
	('flowdock'),
	('hipchat'),
	('quay_notification'),
	('slack'),
	('webhook')
) AS v
WHERE NOT EXISTS (SELECT 1 FROM externalnotificationmethod e WHERE e.name = v.column1);

INSERT INTO notificationkind (name)
SELECT v.column1 FROM (VALUES
	('build_failure'),
	('build_queued'),
	('build_start'),
	('build_success'),
	('expiring_license'),
	('maintenance'),
	('org_team_invite'),
	('over_private_usage'),
	('password_required'),
	('repo_push'),
	('service_key_submitted'),
	('vulnerability_found'),
	('build_cancelled'),
	('repo_mirror_sync_started'),
	('repo_mirror_sync_success'),
	('repo_mirror_sync_failed'),
	('quota_warning'),
	('quota_error'),
	('assigned_authorization')
) AS v
WHERE NOT EXISTS (SELECT 1 FROM notificationkind e WHERE e.name = v.column1);
