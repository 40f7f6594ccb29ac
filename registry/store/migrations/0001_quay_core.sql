-- quayctl migration 1: the part of Project Quay's schema the registry uses.
--
-- Table, column, constraint and index names and types follow Quay's schema
-- (data/database.py and its Alembic migrations), so that Quay and quayctl can
-- share one database. Everything is IF NOT EXISTS: run against a database that
-- Quay itself created, this migration changes nothing.
--
-- This file is a text/template. Only what differs between the dialects is a
-- placeholder: {{.PK}} / {{.BigPK}} (auto-increment integer ids; BIGINT where
-- Quay uses BigAutoField), {{.DateTime}} (naive UTC datetime). BOOLEAN, TEXT,
-- BIGINT and VARCHAR are spelled the same on SQLite and PostgreSQL.
-- Statements end with ";" at the end of a line. Tables come in dependency
-- order because PostgreSQL checks foreign keys at CREATE time.

-- Identity ------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS "user" (
	id {{.PK}},
	uuid VARCHAR(36),
	username VARCHAR(255) NOT NULL,
	password_hash VARCHAR(255),
	email VARCHAR(255) NOT NULL,
	verified BOOLEAN NOT NULL,
	stripe_id VARCHAR(255),
	organization BOOLEAN NOT NULL,
	robot BOOLEAN NOT NULL,
	invoice_email BOOLEAN NOT NULL,
	invalid_login_attempts INTEGER DEFAULT 0 NOT NULL,
	last_invalid_login {{.DateTime}} NOT NULL,
	removed_tag_expiration_s BIGINT DEFAULT 1209600 NOT NULL,
	enabled BOOLEAN DEFAULT true NOT NULL,
	invoice_email_address VARCHAR(255),
	company VARCHAR(255),
	family_name VARCHAR(255),
	given_name VARCHAR(255),
	location VARCHAR(255),
	maximum_queued_builds_count INTEGER,
	creation_date {{.DateTime}},
	last_accessed {{.DateTime}},
	CONSTRAINT pk_user PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS user_username ON "user" (username);
CREATE INDEX IF NOT EXISTS user_uuid ON "user" (uuid);
CREATE INDEX IF NOT EXISTS user_email_idx ON "user" (email);
CREATE UNIQUE INDEX IF NOT EXISTS user_email_unique_non_org ON "user" (email) WHERE organization = false;
CREATE INDEX IF NOT EXISTS user_organization ON "user" (organization);
CREATE INDEX IF NOT EXISTS user_robot ON "user" (robot);
CREATE INDEX IF NOT EXISTS user_stripe_id ON "user" (stripe_id);
CREATE INDEX IF NOT EXISTS user_invoice_email_address ON "user" (invoice_email_address);
CREATE INDEX IF NOT EXISTS user_last_accessed ON "user" (last_accessed);

CREATE TABLE IF NOT EXISTS loginservice (
	id {{.PK}},
	name VARCHAR(255) NOT NULL,
	CONSTRAINT pk_loginservice PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS loginservice_name ON loginservice (name);

CREATE TABLE IF NOT EXISTS federatedlogin (
	id {{.PK}},
	user_id INTEGER NOT NULL,
	service_id INTEGER NOT NULL,
	service_ident VARCHAR(255) NOT NULL,
	metadata_json TEXT NOT NULL,
	CONSTRAINT pk_federatedlogin PRIMARY KEY (id),
	CONSTRAINT fk_federatedlogin_service_id_loginservice FOREIGN KEY (service_id) REFERENCES loginservice (id),
	CONSTRAINT fk_federatedlogin_user_id_user FOREIGN KEY (user_id) REFERENCES "user" (id)
);
CREATE INDEX IF NOT EXISTS federatedlogin_service_id ON federatedlogin (service_id);
CREATE INDEX IF NOT EXISTS federatedlogin_user_id ON federatedlogin (user_id);
CREATE UNIQUE INDEX IF NOT EXISTS federatedlogin_service_id_service_ident ON federatedlogin (service_id, service_ident);
CREATE UNIQUE INDEX IF NOT EXISTS federatedlogin_service_id_user_id ON federatedlogin (service_id, user_id);

CREATE TABLE IF NOT EXISTS teamrole (
	id {{.PK}},
	name VARCHAR(255) NOT NULL,
	CONSTRAINT pk_teamrole PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS teamrole_name ON teamrole (name);

CREATE TABLE IF NOT EXISTS team (
	id {{.PK}},
	name VARCHAR(255) NOT NULL,
	organization_id INTEGER NOT NULL,
	role_id INTEGER NOT NULL,
	description TEXT NOT NULL,
	CONSTRAINT pk_team PRIMARY KEY (id),
	CONSTRAINT fk_team_organization_id_user FOREIGN KEY (organization_id) REFERENCES "user" (id),
	CONSTRAINT fk_team_role_id_teamrole FOREIGN KEY (role_id) REFERENCES teamrole (id)
);
CREATE INDEX IF NOT EXISTS team_name ON team (name);
CREATE UNIQUE INDEX IF NOT EXISTS team_name_organization_id ON team (name, organization_id);
CREATE INDEX IF NOT EXISTS team_organization_id ON team (organization_id);
CREATE INDEX IF NOT EXISTS team_role_id ON team (role_id);

CREATE TABLE IF NOT EXISTS teammember (
	id {{.PK}},
	user_id INTEGER NOT NULL,
	team_id INTEGER NOT NULL,
	CONSTRAINT pk_teammember PRIMARY KEY (id),
	CONSTRAINT fk_teammember_team_id_team FOREIGN KEY (team_id) REFERENCES team (id),
	CONSTRAINT fk_teammember_user_id_user FOREIGN KEY (user_id) REFERENCES "user" (id)
);
CREATE INDEX IF NOT EXISTS teammember_team_id ON teammember (team_id);
CREATE INDEX IF NOT EXISTS teammember_user_id ON teammember (user_id);
CREATE UNIQUE INDEX IF NOT EXISTS teammember_user_id_team_id ON teammember (user_id, team_id);

CREATE TABLE IF NOT EXISTS role (
	id {{.PK}},
	name VARCHAR(255) NOT NULL,
	CONSTRAINT pk_role PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS role_name ON role (name);

CREATE TABLE IF NOT EXISTS robotaccounttoken (
	id {{.PK}},
	robot_account_id INTEGER NOT NULL,
	token VARCHAR(255) NOT NULL,
	fully_migrated BOOLEAN DEFAULT false NOT NULL,
	CONSTRAINT pk_robotaccounttoken PRIMARY KEY (id),
	CONSTRAINT fk_robotaccounttoken_robot_account_id_user FOREIGN KEY (robot_account_id) REFERENCES "user" (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS robotaccounttoken_robot_account_id ON robotaccounttoken (robot_account_id);

CREATE TABLE IF NOT EXISTS robotaccountmetadata (
	id {{.PK}},
	robot_account_id INTEGER NOT NULL,
	description VARCHAR(255) NOT NULL,
	unstructured_json TEXT NOT NULL,
	CONSTRAINT pk_robotaccountmetadata PRIMARY KEY (id),
	CONSTRAINT fk_robotaccountmetadata_robot_account_id_user FOREIGN KEY (robot_account_id) REFERENCES "user" (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS robotaccountmetadata_robot_account_id ON robotaccountmetadata (robot_account_id);

CREATE TABLE IF NOT EXISTS oauthapplication (
	id {{.PK}},
	client_id VARCHAR(255) NOT NULL,
	redirect_uri VARCHAR(255) NOT NULL,
	application_uri VARCHAR(255) NOT NULL,
	organization_id INTEGER NOT NULL,
	name VARCHAR(255) NOT NULL,
	description TEXT NOT NULL,
	gravatar_email VARCHAR(255),
	secure_client_secret VARCHAR(255),
	fully_migrated BOOLEAN DEFAULT false NOT NULL,
	CONSTRAINT pk_oauthapplication PRIMARY KEY (id),
	CONSTRAINT fk_oauthapplication_organization_id_user FOREIGN KEY (organization_id) REFERENCES "user" (id)
);
CREATE INDEX IF NOT EXISTS oauthapplication_client_id ON oauthapplication (client_id);
CREATE INDEX IF NOT EXISTS oauthapplication_organization_id ON oauthapplication (organization_id);

CREATE TABLE IF NOT EXISTS oauthaccesstoken (
	id {{.PK}},
	uuid VARCHAR(255) NOT NULL,
	application_id INTEGER NOT NULL,
	authorized_user_id INTEGER NOT NULL,
	scope VARCHAR(255) NOT NULL,
	token_type VARCHAR(255) NOT NULL,
	expires_at {{.DateTime}} NOT NULL,
	data TEXT NOT NULL,
	token_code VARCHAR(255) NOT NULL,
	token_name VARCHAR(255) NOT NULL,
	last_accessed {{.DateTime}},
	created {{.DateTime}},
	display_name VARCHAR(255),
	CONSTRAINT pk_oauthaccesstoken PRIMARY KEY (id),
	CONSTRAINT fk_oauthaccesstoken_application_id_oauthapplication FOREIGN KEY (application_id) REFERENCES oauthapplication (id),
	CONSTRAINT fk_oauthaccesstoken_authorized_user_id_user FOREIGN KEY (authorized_user_id) REFERENCES "user" (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS oauthaccesstoken_token_name ON oauthaccesstoken (token_name);
CREATE INDEX IF NOT EXISTS oauthaccesstoken_application_id ON oauthaccesstoken (application_id);
CREATE INDEX IF NOT EXISTS oauthaccesstoken_authorized_user_id ON oauthaccesstoken (authorized_user_id);
CREATE INDEX IF NOT EXISTS oauthaccesstoken_uuid ON oauthaccesstoken (uuid);
CREATE INDEX IF NOT EXISTS oauthaccesstoken_application_id_last_accessed ON oauthaccesstoken (application_id, last_accessed);

CREATE TABLE IF NOT EXISTS appspecificauthtoken (
	id {{.PK}},
	user_id INTEGER NOT NULL,
	uuid VARCHAR(36) NOT NULL,
	title VARCHAR(255) NOT NULL,
	created {{.DateTime}} NOT NULL,
	expiration {{.DateTime}},
	last_accessed {{.DateTime}},
	token_name VARCHAR(255) NOT NULL,
	token_secret VARCHAR(255) NOT NULL,
	CONSTRAINT pk_appspecificauthtoken PRIMARY KEY (id),
	CONSTRAINT fk_appspecificauthtoken_user_id_user FOREIGN KEY (user_id) REFERENCES "user" (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS appspecificauthtoken_token_name ON appspecificauthtoken (token_name);
CREATE INDEX IF NOT EXISTS appspecificauthtoken_user_id ON appspecificauthtoken (user_id);
CREATE INDEX IF NOT EXISTS appspecificauthtoken_user_id_expiration ON appspecificauthtoken (user_id, expiration);
CREATE INDEX IF NOT EXISTS appspecificauthtoken_uuid ON appspecificauthtoken (uuid);

CREATE TABLE IF NOT EXISTS servicekeyapproval (
	id {{.PK}},
	approver_id INTEGER,
	approval_type VARCHAR(255) NOT NULL,
	approved_date {{.DateTime}} NOT NULL,
	notes TEXT NOT NULL,
	CONSTRAINT pk_servicekeyapproval PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS servicekeyapproval_approval_type ON servicekeyapproval (approval_type);
CREATE INDEX IF NOT EXISTS servicekeyapproval_approver_id ON servicekeyapproval (approver_id);

CREATE TABLE IF NOT EXISTS servicekey (
	id {{.PK}},
	name VARCHAR(255) NOT NULL,
	kid VARCHAR(255) NOT NULL,
	service VARCHAR(255) NOT NULL,
	jwk TEXT NOT NULL,
	metadata TEXT NOT NULL,
	created_date {{.DateTime}} NOT NULL,
	expiration_date {{.DateTime}},
	rotation_duration INTEGER,
	approval_id INTEGER,
	CONSTRAINT pk_servicekey PRIMARY KEY (id),
	CONSTRAINT fk_servicekey_approval_id_servicekeyapproval FOREIGN KEY (approval_id) REFERENCES servicekeyapproval (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS servicekey_kid ON servicekey (kid);
CREATE INDEX IF NOT EXISTS servicekey_service ON servicekey (service);
CREATE INDEX IF NOT EXISTS servicekey_approval_id ON servicekey (approval_id);

-- Repositories --------------------------------------------------------------

CREATE TABLE IF NOT EXISTS visibility (
	id {{.PK}},
	name VARCHAR(255) NOT NULL,
	CONSTRAINT pk_visibility PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS visibility_name ON visibility (name);

CREATE TABLE IF NOT EXISTS repositorykind (
	id {{.PK}},
	name VARCHAR(255) NOT NULL,
	CONSTRAINT pk_repositorykind PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS repositorykind_name ON repositorykind (name);

CREATE TABLE IF NOT EXISTS repository (
	id {{.PK}},
	namespace_user_id INTEGER,
	name VARCHAR(255) NOT NULL,
	visibility_id INTEGER NOT NULL,
	description TEXT,
	badge_token VARCHAR(255) NOT NULL,
	kind_id INTEGER DEFAULT 1 NOT NULL,
	trust_enabled BOOLEAN DEFAULT false NOT NULL,
	state INTEGER DEFAULT 0 NOT NULL,
	CONSTRAINT pk_repository PRIMARY KEY (id),
	CONSTRAINT fk_repository_namespace_user_id_user FOREIGN KEY (namespace_user_id) REFERENCES "user" (id),
	CONSTRAINT fk_repository_visibility_id_visibility FOREIGN KEY (visibility_id) REFERENCES visibility (id),
	CONSTRAINT fk_repository_kind_id_repositorykind FOREIGN KEY (kind_id) REFERENCES repositorykind (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS repository_namespace_user_id_name ON repository (namespace_user_id, name);
CREATE INDEX IF NOT EXISTS repository_namespace_user_id ON repository (namespace_user_id);
CREATE INDEX IF NOT EXISTS repository_visibility_id ON repository (visibility_id);
CREATE INDEX IF NOT EXISTS repository_kind_id ON repository (kind_id);
CREATE INDEX IF NOT EXISTS repository_state ON repository (state);
{{- if .SQLite}}
-- On PostgreSQL these two are GIN trigram indexes, created by Migrate when
-- the pg_trgm extension is available; SQLite has plain indexes of that name.
CREATE INDEX IF NOT EXISTS repository_name__fulltext ON repository (name);
CREATE INDEX IF NOT EXISTS repository_description__fulltext ON repository (description);
{{- end}}

CREATE TABLE IF NOT EXISTS repositorypermission (
	id {{.PK}},
	team_id INTEGER,
	user_id INTEGER,
	repository_id INTEGER NOT NULL,
	role_id INTEGER NOT NULL,
	CONSTRAINT pk_repositorypermission PRIMARY KEY (id),
	CONSTRAINT fk_repositorypermission_repository_id_repository FOREIGN KEY (repository_id) REFERENCES repository (id),
	CONSTRAINT fk_repositorypermission_role_id_role FOREIGN KEY (role_id) REFERENCES role (id),
	CONSTRAINT fk_repositorypermission_team_id_team FOREIGN KEY (team_id) REFERENCES team (id),
	CONSTRAINT fk_repositorypermission_user_id_user FOREIGN KEY (user_id) REFERENCES "user" (id)
);
CREATE INDEX IF NOT EXISTS repositorypermission_repository_id ON repositorypermission (repository_id);
CREATE INDEX IF NOT EXISTS repositorypermission_role_id ON repositorypermission (role_id);
CREATE INDEX IF NOT EXISTS repositorypermission_team_id ON repositorypermission (team_id);
CREATE INDEX IF NOT EXISTS repositorypermission_user_id ON repositorypermission (user_id);
CREATE UNIQUE INDEX IF NOT EXISTS repositorypermission_team_id_repository_id ON repositorypermission (team_id, repository_id);
CREATE UNIQUE INDEX IF NOT EXISTS repositorypermission_user_id_repository_id ON repositorypermission (user_id, repository_id);

CREATE TABLE IF NOT EXISTS deletedrepository (
	id {{.PK}},
	repository_id INTEGER NOT NULL,
	marked {{.DateTime}} NOT NULL,
	original_name VARCHAR(255) NOT NULL,
	queue_id VARCHAR(255),
	CONSTRAINT pk_deletedrepository PRIMARY KEY (id),
	CONSTRAINT fk_deletedrepository_repository_id_repository FOREIGN KEY (repository_id) REFERENCES repository (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS deletedrepository_repository_id ON deletedrepository (repository_id);
CREATE INDEX IF NOT EXISTS deletedrepository_original_name ON deletedrepository (original_name);
CREATE INDEX IF NOT EXISTS deletedrepository_queue_id ON deletedrepository (queue_id);

-- Blobs and storage ---------------------------------------------------------

CREATE TABLE IF NOT EXISTS imagestorage (
	id {{.PK}},
	uuid VARCHAR(255) NOT NULL,
	image_size BIGINT,
	uncompressed_size BIGINT,
	uploading BOOLEAN,
	cas_path BOOLEAN DEFAULT false NOT NULL,
	content_checksum VARCHAR(255),
	CONSTRAINT pk_imagestorage PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS imagestorage_uuid ON imagestorage (uuid);
CREATE INDEX IF NOT EXISTS imagestorage_content_checksum ON imagestorage (content_checksum);

CREATE TABLE IF NOT EXISTS imagestoragelocation (
	id {{.PK}},
	name VARCHAR(255) NOT NULL,
	CONSTRAINT pk_imagestoragelocation PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS imagestoragelocation_name ON imagestoragelocation (name);

CREATE TABLE IF NOT EXISTS imagestorageplacement (
	id {{.PK}},
	storage_id INTEGER NOT NULL,
	location_id INTEGER NOT NULL,
	CONSTRAINT pk_imagestorageplacement PRIMARY KEY (id),
	CONSTRAINT fk_imagestorageplacement_location_id_imagestoragelocation FOREIGN KEY (location_id) REFERENCES imagestoragelocation (id),
	CONSTRAINT fk_imagestorageplacement_storage_id_imagestorage FOREIGN KEY (storage_id) REFERENCES imagestorage (id)
);
CREATE INDEX IF NOT EXISTS imagestorageplacement_location_id ON imagestorageplacement (location_id);
CREATE INDEX IF NOT EXISTS imagestorageplacement_storage_id ON imagestorageplacement (storage_id);
CREATE UNIQUE INDEX IF NOT EXISTS imagestorageplacement_storage_id_location_id ON imagestorageplacement (storage_id, location_id);

CREATE TABLE IF NOT EXISTS uploadedblob (
	id {{.BigPK}},
	repository_id INTEGER NOT NULL,
	blob_id INTEGER NOT NULL,
	uploaded_at {{.DateTime}} NOT NULL,
	expires_at {{.DateTime}} NOT NULL,
	CONSTRAINT pk_uploadedblob PRIMARY KEY (id),
	CONSTRAINT fk_uploadedblob_blob_id_imagestorage FOREIGN KEY (blob_id) REFERENCES imagestorage (id),
	CONSTRAINT fk_uploadedblob_repository_id_repository FOREIGN KEY (repository_id) REFERENCES repository (id)
);
CREATE INDEX IF NOT EXISTS uploadedblob_blob_id ON uploadedblob (blob_id);
CREATE INDEX IF NOT EXISTS uploadedblob_expires_at ON uploadedblob (expires_at);
CREATE INDEX IF NOT EXISTS uploadedblob_repository_id ON uploadedblob (repository_id);

CREATE TABLE IF NOT EXISTS blobupload (
	id {{.PK}},
	repository_id INTEGER NOT NULL,
	uuid VARCHAR(255) NOT NULL,
	byte_count BIGINT NOT NULL,
	sha_state TEXT,
	location_id INTEGER NOT NULL,
	storage_metadata TEXT,
	chunk_count INTEGER DEFAULT 0 NOT NULL,
	uncompressed_byte_count BIGINT,
	created {{.DateTime}} NOT NULL,
	piece_sha_state TEXT,
	piece_hashes TEXT,
	CONSTRAINT pk_blobupload PRIMARY KEY (id),
	CONSTRAINT fk_blobupload_location_id_imagestoragelocation FOREIGN KEY (location_id) REFERENCES imagestoragelocation (id),
	CONSTRAINT fk_blobupload_repository_id_repository FOREIGN KEY (repository_id) REFERENCES repository (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS blobupload_uuid ON blobupload (uuid);
CREATE UNIQUE INDEX IF NOT EXISTS blobupload_repository_id_uuid ON blobupload (repository_id, uuid);
CREATE INDEX IF NOT EXISTS blobupload_repository_id ON blobupload (repository_id);
CREATE INDEX IF NOT EXISTS blobupload_location_id ON blobupload (location_id);
CREATE INDEX IF NOT EXISTS blobupload_created ON blobupload (created);

-- Manifests and tags --------------------------------------------------------

CREATE TABLE IF NOT EXISTS mediatype (
	id {{.PK}},
	name VARCHAR(255) NOT NULL,
	CONSTRAINT pk_mediatype PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS mediatype_name ON mediatype (name);

CREATE TABLE IF NOT EXISTS manifest (
	id {{.PK}},
	repository_id INTEGER NOT NULL,
	digest VARCHAR(255) NOT NULL,
	media_type_id INTEGER NOT NULL,
	manifest_bytes TEXT NOT NULL,
	config_media_type VARCHAR(255),
	layers_compressed_size BIGINT,
	subject VARCHAR(255),
	subject_backfilled BOOLEAN,
	artifact_type VARCHAR(255),
	artifact_type_backfilled BOOLEAN,
	CONSTRAINT pk_manifest PRIMARY KEY (id),
	CONSTRAINT fk_manifest_repository_id_repository FOREIGN KEY (repository_id) REFERENCES repository (id),
	CONSTRAINT fk_manifest_media_type_id_mediatype FOREIGN KEY (media_type_id) REFERENCES mediatype (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS manifest_repository_id_digest ON manifest (repository_id, digest);
CREATE INDEX IF NOT EXISTS manifest_repository_id ON manifest (repository_id);
CREATE INDEX IF NOT EXISTS manifest_digest ON manifest (digest);
CREATE INDEX IF NOT EXISTS manifest_media_type_id ON manifest (media_type_id);
CREATE INDEX IF NOT EXISTS manifest_repository_id_media_type_id ON manifest (repository_id, media_type_id);
CREATE INDEX IF NOT EXISTS manifest_repository_id_config_media_type ON manifest (repository_id, config_media_type);
CREATE INDEX IF NOT EXISTS manifest_repository_id_subject ON manifest (repository_id, subject);
CREATE INDEX IF NOT EXISTS manifest_subject_backfilled ON manifest (subject_backfilled);
CREATE INDEX IF NOT EXISTS manifest_repository_id_artifact_type ON manifest (repository_id, artifact_type);
CREATE INDEX IF NOT EXISTS manifest_artifact_type_backfilled ON manifest (artifact_type_backfilled);

CREATE TABLE IF NOT EXISTS manifestblob (
	id {{.BigPK}},
	repository_id INTEGER NOT NULL,
	manifest_id INTEGER NOT NULL,
	blob_id INTEGER NOT NULL,
	CONSTRAINT pk_manifestblob PRIMARY KEY (id),
	CONSTRAINT fk_manifestblob_manifest_id_manifest FOREIGN KEY (manifest_id) REFERENCES manifest (id),
	CONSTRAINT fk_manifestblob_repository_id_repository FOREIGN KEY (repository_id) REFERENCES repository (id),
	CONSTRAINT fk_manifestblob_blob_id_imagestorage FOREIGN KEY (blob_id) REFERENCES imagestorage (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS manifestblob_manifest_id_blob_id ON manifestblob (manifest_id, blob_id);
CREATE INDEX IF NOT EXISTS manifestblob_manifest_id ON manifestblob (manifest_id);
CREATE INDEX IF NOT EXISTS manifestblob_blob_id ON manifestblob (blob_id);
CREATE INDEX IF NOT EXISTS manifestblob_repository_id ON manifestblob (repository_id);
CREATE INDEX IF NOT EXISTS manifestblob_repository_id_blob_id ON manifestblob (repository_id, blob_id);

CREATE TABLE IF NOT EXISTS manifestchild (
	id {{.PK}},
	repository_id INTEGER NOT NULL,
	manifest_id INTEGER NOT NULL,
	child_manifest_id INTEGER NOT NULL,
	CONSTRAINT pk_manifestchild PRIMARY KEY (id),
	CONSTRAINT fk_manifestchild_child_manifest_id_manifest FOREIGN KEY (child_manifest_id) REFERENCES manifest (id),
	CONSTRAINT fk_manifestchild_manifest_id_manifest FOREIGN KEY (manifest_id) REFERENCES manifest (id),
	CONSTRAINT fk_manifestchild_repository_id_repository FOREIGN KEY (repository_id) REFERENCES repository (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS manifestchild_manifest_id_child_manifest_id ON manifestchild (manifest_id, child_manifest_id);
CREATE INDEX IF NOT EXISTS manifestchild_manifest_id ON manifestchild (manifest_id);
CREATE INDEX IF NOT EXISTS manifestchild_child_manifest_id ON manifestchild (child_manifest_id);
CREATE INDEX IF NOT EXISTS manifestchild_repository_id ON manifestchild (repository_id);
CREATE INDEX IF NOT EXISTS manifestchild_repository_id_child_manifest_id ON manifestchild (repository_id, child_manifest_id);
CREATE INDEX IF NOT EXISTS manifestchild_repository_id_manifest_id ON manifestchild (repository_id, manifest_id);
CREATE INDEX IF NOT EXISTS manifestchild_repository_id_manifest_id_child_manifest_id ON manifestchild (repository_id, manifest_id, child_manifest_id);

CREATE TABLE IF NOT EXISTS tagkind (
	id {{.PK}},
	name VARCHAR(255) NOT NULL,
	CONSTRAINT pk_tagkind PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS tagkind_name ON tagkind (name);

CREATE TABLE IF NOT EXISTS tag (
	id {{.PK}},
	name VARCHAR(255) NOT NULL,
	repository_id INTEGER NOT NULL,
	manifest_id INTEGER,
	lifetime_start_ms BIGINT NOT NULL,
	lifetime_end_ms BIGINT,
	hidden BOOLEAN DEFAULT false NOT NULL,
	reversion BOOLEAN DEFAULT false NOT NULL,
	tag_kind_id INTEGER NOT NULL,
	linked_tag_id INTEGER,
	immutable BOOLEAN DEFAULT false NOT NULL,
	CONSTRAINT pk_tag PRIMARY KEY (id),
	CONSTRAINT fk_tag_linked_tag_id_tag FOREIGN KEY (linked_tag_id) REFERENCES tag (id),
	CONSTRAINT fk_tag_manifest_id_manifest FOREIGN KEY (manifest_id) REFERENCES manifest (id),
	CONSTRAINT fk_tag_repository_id_repository FOREIGN KEY (repository_id) REFERENCES repository (id),
	CONSTRAINT fk_tag_tag_kind_id_tagkind FOREIGN KEY (tag_kind_id) REFERENCES tagkind (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS tag_repository_id_name_lifetime_end_ms ON tag (repository_id, name, lifetime_end_ms);
CREATE INDEX IF NOT EXISTS tag_lifetime_end_ms ON tag (lifetime_end_ms);
CREATE INDEX IF NOT EXISTS tag_linked_tag_id ON tag (linked_tag_id);
CREATE INDEX IF NOT EXISTS tag_manifest_id ON tag (manifest_id);
CREATE INDEX IF NOT EXISTS tag_repository_id ON tag (repository_id);
CREATE INDEX IF NOT EXISTS tag_tag_kind_id ON tag (tag_kind_id);
CREATE INDEX IF NOT EXISTS tag_repository_id_name ON tag (repository_id, name);
CREATE INDEX IF NOT EXISTS tag_repository_id_name_hidden ON tag (repository_id, name, hidden);
CREATE INDEX IF NOT EXISTS tag_repository_id_name_tag_kind_id ON tag (repository_id, name, tag_kind_id);
CREATE INDEX IF NOT EXISTS tag_repository_id_lifetime_start_ms ON tag (repository_id, lifetime_start_ms);
CREATE INDEX IF NOT EXISTS tag_repository_id_lifetime_end_ms ON tag (repository_id, lifetime_end_ms);
CREATE INDEX IF NOT EXISTS tag_repository_id_immutable ON tag (repository_id, immutable);
CREATE INDEX IF NOT EXISTS tag_manifest_id_immutable ON tag (manifest_id, immutable);
CREATE INDEX IF NOT EXISTS tag_manifest_id_lifetime_end_ms ON tag (manifest_id, lifetime_end_ms);

-- Audit log -----------------------------------------------------------------

CREATE TABLE IF NOT EXISTS logentrykind (
	id {{.PK}},
	name VARCHAR(255) NOT NULL,
	CONSTRAINT pk_logentrykind PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS logentrykind_name ON logentrykind (name);

-- Quay declares no foreign keys on logentry3, so that logs survive deletions.
CREATE TABLE IF NOT EXISTS logentry3 (
	id {{.BigPK}},
	kind_id INTEGER NOT NULL,
	account_id INTEGER NOT NULL,
	performer_id INTEGER,
	repository_id INTEGER,
	datetime {{.DateTime}} NOT NULL,
	ip VARCHAR(255),
	metadata_json TEXT NOT NULL,
	CONSTRAINT pk_logentry3 PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS logentry3_account_id_datetime ON logentry3 (account_id, datetime);
CREATE INDEX IF NOT EXISTS logentry3_datetime ON logentry3 (datetime);
CREATE INDEX IF NOT EXISTS logentry3_performer_id_datetime ON logentry3 (performer_id, datetime);
CREATE INDEX IF NOT EXISTS logentry3_repository_id_datetime_kind_id ON logentry3 (repository_id, datetime, kind_id);

-- Work queue ----------------------------------------------------------------

CREATE TABLE IF NOT EXISTS queueitem (
	id {{.PK}},
	queue_name VARCHAR(1024) NOT NULL,
	body TEXT NOT NULL,
	available_after {{.DateTime}} NOT NULL,
	available BOOLEAN NOT NULL,
	processing_expires {{.DateTime}},
	retries_remaining INTEGER NOT NULL,
	state_id VARCHAR(255) DEFAULT '' NOT NULL,
	CONSTRAINT pk_queueitem PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS queueitem_queue_name ON queueitem (queue_name);
CREATE UNIQUE INDEX IF NOT EXISTS queueitem_state_id ON queueitem (state_id);
CREATE INDEX IF NOT EXISTS queueitem_processing_expires_available ON queueitem (processing_expires, available);
CREATE INDEX IF NOT EXISTS queueitem_pe_aafter_qname_rremaining_available ON queueitem (processing_expires, available_after, queue_name, retries_remaining, available);
CREATE INDEX IF NOT EXISTS queueitem_pexpires_aafter_rremaining_available ON queueitem (processing_expires, available_after, retries_remaining, available);
CREATE INDEX IF NOT EXISTS queueitem_processing_expires_queue_name_available ON queueitem (processing_expires, queue_name, available);

-- Quota ---------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS userorganizationquota (
	id {{.PK}},
	namespace_id INTEGER NOT NULL,
	limit_bytes BIGINT NOT NULL,
	CONSTRAINT pk_userorganizationquota PRIMARY KEY (id),
	CONSTRAINT fk_userorganizationquota_organization FOREIGN KEY (namespace_id) REFERENCES "user" (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS userorganizationquota_organization ON userorganizationquota (namespace_id);

CREATE TABLE IF NOT EXISTS quotatype (
	id {{.PK}},
	name VARCHAR(255) NOT NULL,
	CONSTRAINT pk_quotatype PRIMARY KEY (id)
);

CREATE TABLE IF NOT EXISTS quotalimits (
	id {{.PK}},
	quota_id INTEGER NOT NULL,
	quota_type_id INTEGER NOT NULL,
	percent_of_limit INTEGER NOT NULL,
	CONSTRAINT pk_quotalimits PRIMARY KEY (id),
	CONSTRAINT fk_quotalimit_type FOREIGN KEY (quota_type_id) REFERENCES quotatype (id),
	CONSTRAINT fk_quotalimit_id FOREIGN KEY (quota_id) REFERENCES userorganizationquota (id)
);
CREATE INDEX IF NOT EXISTS quotalimits_quota_id ON quotalimits (quota_id);

CREATE TABLE IF NOT EXISTS quotanamespacesize (
	id {{.PK}},
	namespace_user_id INTEGER NOT NULL,
	size_bytes BIGINT DEFAULT 0 NOT NULL,
	backfill_start_ms BIGINT,
	backfill_complete BOOLEAN DEFAULT false NOT NULL,
	CONSTRAINT pk_quotanamespacesizeid PRIMARY KEY (id),
	CONSTRAINT fk_quotanamespacesize_namespace_user_id_user FOREIGN KEY (namespace_user_id) REFERENCES "user" (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS quotanamespacesize_namespace_user_id ON quotanamespacesize (namespace_user_id);
CREATE INDEX IF NOT EXISTS quotanamespacesize_size_bytes ON quotanamespacesize (size_bytes);
CREATE INDEX IF NOT EXISTS quotanamespacesize_backfill_start_ms ON quotanamespacesize (backfill_start_ms);

CREATE TABLE IF NOT EXISTS quotarepositorysize (
	id {{.PK}},
	repository_id INTEGER NOT NULL,
	size_bytes BIGINT DEFAULT 0 NOT NULL,
	backfill_start_ms BIGINT,
	backfill_complete BOOLEAN DEFAULT false NOT NULL,
	CONSTRAINT pk_quotarepositorysizeid PRIMARY KEY (id),
	CONSTRAINT fk_quotarepositorysize_repository_id_repository FOREIGN KEY (repository_id) REFERENCES repository (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS quotarepositorysize_repository_id ON quotarepositorysize (repository_id);
CREATE INDEX IF NOT EXISTS quotarepositorysize_size_bytes ON quotarepositorysize (size_bytes);

CREATE TABLE IF NOT EXISTS quotaregistrysize (
	id {{.PK}},
	size_bytes BIGINT DEFAULT 0 NOT NULL,
	running BOOLEAN DEFAULT false NOT NULL,
	queued BOOLEAN DEFAULT false NOT NULL,
	completed_ms BIGINT,
	CONSTRAINT pk_quotaregistrysizeid PRIMARY KEY (id)
);

-- Auto-prune ----------------------------------------------------------------

CREATE TABLE IF NOT EXISTS namespaceautoprunepolicy (
	id {{.PK}},
	uuid VARCHAR(36) NOT NULL,
	namespace_id INTEGER NOT NULL,
	policy TEXT NOT NULL,
	CONSTRAINT pk_namespaceautoprunepolicyid PRIMARY KEY (id),
	CONSTRAINT fk_namespaceautoprunepolicy_namespace_id_user FOREIGN KEY (namespace_id) REFERENCES "user" (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS namespaceautoprunepolicy_uuid ON namespaceautoprunepolicy (uuid);
CREATE INDEX IF NOT EXISTS namespaceautoprunepolicy_namespace_id ON namespaceautoprunepolicy (namespace_id);

CREATE TABLE IF NOT EXISTS repositoryautoprunepolicy (
	id {{.PK}},
	uuid VARCHAR(36) NOT NULL,
	repository_id INTEGER NOT NULL,
	namespace_id INTEGER NOT NULL,
	policy TEXT NOT NULL,
	CONSTRAINT pk_repositoryautoprunepolicyid PRIMARY KEY (id),
	CONSTRAINT fk_repositoryautoprunepolicy_repository_id_repository FOREIGN KEY (repository_id) REFERENCES repository (id),
	CONSTRAINT fk_repositoryautoprunepolicy_namespace_id_user FOREIGN KEY (namespace_id) REFERENCES "user" (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS repositoryautoprunepolicy_uuid ON repositoryautoprunepolicy (uuid);
CREATE INDEX IF NOT EXISTS repositoryautoprunepolicy_repository_id ON repositoryautoprunepolicy (repository_id);
CREATE INDEX IF NOT EXISTS repositoryautoprunepolicy_namespace_id ON repositoryautoprunepolicy (namespace_id);

CREATE TABLE IF NOT EXISTS autoprunetaskstatus (
	id {{.PK}},
	namespace_id INTEGER NOT NULL,
	last_ran_ms BIGINT,
	status TEXT,
	CONSTRAINT pk_autoprunetaskstatusid PRIMARY KEY (id),
	CONSTRAINT fk_autoprunetaskstatus_namespace_id_user FOREIGN KEY (namespace_id) REFERENCES "user" (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS autoprunetaskstatus_namespace_id ON autoprunetaskstatus (namespace_id);
CREATE INDEX IF NOT EXISTS autoprunetaskstatus_last_ran_ms ON autoprunetaskstatus (last_ran_ms);

-- Repository mirroring ------------------------------------------------------

CREATE TABLE IF NOT EXISTS repomirrorrule (
	id {{.PK}},
	uuid VARCHAR(36) NOT NULL,
	repository_id INTEGER NOT NULL,
	creation_date {{.DateTime}} NOT NULL,
	rule_type INTEGER NOT NULL,
	rule_value TEXT NOT NULL,
	left_child_id INTEGER,
	right_child_id INTEGER,
	CONSTRAINT pk_repomirrorrule PRIMARY KEY (id),
	CONSTRAINT fk_repomirrorrule_left_child_id_repomirrorrule FOREIGN KEY (left_child_id) REFERENCES repomirrorrule (id),
	CONSTRAINT fk_repomirrorrule_repository_id_repository FOREIGN KEY (repository_id) REFERENCES repository (id),
	CONSTRAINT fk_repomirrorrule_right_child_id_repomirrorrule FOREIGN KEY (right_child_id) REFERENCES repomirrorrule (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS repomirrorrule_uuid ON repomirrorrule (uuid);
CREATE INDEX IF NOT EXISTS repomirrorrule_repository_id ON repomirrorrule (repository_id);
CREATE INDEX IF NOT EXISTS repomirrorrule_rule_type ON repomirrorrule (rule_type);
CREATE INDEX IF NOT EXISTS repomirrorrule_left_child_id ON repomirrorrule (left_child_id);
CREATE INDEX IF NOT EXISTS repomirrorrule_right_child_id ON repomirrorrule (right_child_id);

CREATE TABLE IF NOT EXISTS repomirrorconfig (
	id {{.PK}},
	repository_id INTEGER NOT NULL,
	creation_date {{.DateTime}} NOT NULL,
	is_enabled BOOLEAN NOT NULL,
	mirror_type INTEGER NOT NULL,
	internal_robot_id INTEGER NOT NULL,
	external_registry_username VARCHAR(4096),
	external_registry_config TEXT NOT NULL,
	sync_interval INTEGER DEFAULT 60 NOT NULL,
	sync_start_date {{.DateTime}},
	sync_expiration_date {{.DateTime}},
	sync_retries_remaining INTEGER DEFAULT 3 NOT NULL,
	sync_status INTEGER NOT NULL,
	sync_transaction_id VARCHAR(36),
	root_rule_id INTEGER NOT NULL,
	external_reference TEXT NOT NULL,
	external_registry_password VARCHAR(9000),
	skopeo_timeout BIGINT DEFAULT 300 NOT NULL,
	architecture_filter TEXT,
	CONSTRAINT pk_repomirrorconfig PRIMARY KEY (id),
	CONSTRAINT fk_repomirrorconfig_repository_id_repository FOREIGN KEY (repository_id) REFERENCES repository (id),
	CONSTRAINT fk_repomirrorconfig_root_rule_id_repomirrorrule FOREIGN KEY (root_rule_id) REFERENCES repomirrorrule (id),
	CONSTRAINT fk_repomirrorconfig_internal_robot_id_user FOREIGN KEY (internal_robot_id) REFERENCES "user" (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS repomirrorconfig_repository_id ON repomirrorconfig (repository_id);
CREATE INDEX IF NOT EXISTS repomirrorconfig_internal_robot_id ON repomirrorconfig (internal_robot_id);
CREATE INDEX IF NOT EXISTS repomirrorconfig_root_rule_id ON repomirrorconfig (root_rule_id);
CREATE INDEX IF NOT EXISTS repomirrorconfig_mirror_type ON repomirrorconfig (mirror_type);
CREATE INDEX IF NOT EXISTS repomirrorconfig_sync_status ON repomirrorconfig (sync_status);
CREATE INDEX IF NOT EXISTS repomirrorconfig_sync_transaction_id ON repomirrorconfig (sync_transaction_id);
