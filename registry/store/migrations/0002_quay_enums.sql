-- quayctl migration 2: Quay's enum rows.
--
-- Quay seeds these lookup tables in its migrations; the code refers to rows
-- by name, never by id (ids differ between databases), so rows are added by
-- name when missing and ids are left to the database. Run against a database
-- Quay created, this adds nothing.

INSERT INTO role (name)
SELECT v.column1 FROM (VALUES
	('admin'),
	('write'),
	('read')
) AS v
WHERE NOT EXISTS (SELECT 1 FROM role e WHERE e.name = v.column1);

INSERT INTO teamrole (name)
SELECT v.column1 FROM (VALUES
	('admin'),
	('creator'),
	('member')
) AS v
WHERE NOT EXISTS (SELECT 1 FROM teamrole e WHERE e.name = v.column1);

INSERT INTO visibility (name)
SELECT v.column1 FROM (VALUES
	('public'),
	('private')
) AS v
WHERE NOT EXISTS (SELECT 1 FROM visibility e WHERE e.name = v.column1);

INSERT INTO repositorykind (name)
SELECT v.column1 FROM (VALUES
	('image'),
	('application')
) AS v
WHERE NOT EXISTS (SELECT 1 FROM repositorykind e WHERE e.name = v.column1);

INSERT INTO tagkind (name)
SELECT v.column1 FROM (VALUES
	('tag')
) AS v
WHERE NOT EXISTS (SELECT 1 FROM tagkind e WHERE e.name = v.column1);

INSERT INTO loginservice (name)
SELECT v.column1 FROM (VALUES
	('github'),
	('quayrobot'),
	('ldap'),
	('google'),
	('keystone'),
	('dex'),
	('jwtauthn'),
	('oidc')
) AS v
WHERE NOT EXISTS (SELECT 1 FROM loginservice e WHERE e.name = v.column1);

INSERT INTO quotatype (name)
SELECT v.column1 FROM (VALUES
	('Warning'),
	('Reject')
) AS v
WHERE NOT EXISTS (SELECT 1 FROM quotatype e WHERE e.name = v.column1);

-- All of Quay's media types (Docker, OCI and the old CNR/App Registry ones).
INSERT INTO mediatype (name)
SELECT v.column1 FROM (VALUES
	('text/plain'),
	('application/json'),
	('text/markdown'),
	('application/vnd.cnr.blob.v0.tar+gzip'),
	('application/vnd.cnr.package-manifest.helm.v0.json'),
	('application/vnd.cnr.package-manifest.kpm.v0.json'),
	('application/vnd.cnr.package-manifest.docker-compose.v0.json'),
	('application/vnd.cnr.package.kpm.v0.tar+gzip'),
	('application/vnd.cnr.package.helm.v0.tar+gzip'),
	('application/vnd.cnr.package.docker-compose.v0.tar+gzip'),
	('application/vnd.cnr.manifests.v0.json'),
	('application/vnd.cnr.manifest.list.v0.json'),
	('application/vnd.docker.distribution.manifest.v1+json'),
	('application/vnd.docker.distribution.manifest.v1+prettyjws'),
	('application/vnd.docker.distribution.manifest.v2+json'),
	('application/vnd.docker.distribution.manifest.list.v2+json'),
	('application/vnd.oci.image.manifest.v1+json'),
	('application/vnd.oci.image.index.v1+json')
) AS v
WHERE NOT EXISTS (SELECT 1 FROM mediatype e WHERE e.name = v.column1);

-- local_us is the location name of Quay's default DISTRIBUTED_STORAGE_CONFIG;
-- the others are the ones Quay's migrations seed.
INSERT INTO imagestoragelocation (name)
SELECT v.column1 FROM (VALUES
	('local_us'),
	('s3_us_east_1'),
	('s3_eu_west_1'),
	('s3_ap_southeast_1'),
	('s3_ap_southeast_2'),
	('s3_ap_northeast_1'),
	('s3_sa_east_1'),
	('local'),
	('s3_us_west_1')
) AS v
WHERE NOT EXISTS (SELECT 1 FROM imagestoragelocation e WHERE e.name = v.column1);

-- Every audit log kind Quay knows.
INSERT INTO logentrykind (name)
SELECT v.column1 FROM (VALUES
	('account_change_cc'),
	('account_change_password'),
	('account_change_plan'),
	('account_convert'),
	('add_repo_accesstoken'),
	('add_repo_notification'),
	('add_repo_permission'),
	('add_repo_webhook'),
	('build_dockerfile'),
	('change_repo_permission'),
	('change_repo_visibility'),
	('create_application'),
	('create_prototype_permission'),
	('create_repo'),
	('create_robot'),
	('create_tag'),
	('delete_application'),
	('delete_prototype_permission'),
	('delete_repo'),
	('delete_repo_accesstoken'),
	('delete_repo_notification'),
	('delete_repo_permission'),
	('delete_repo_trigger'),
	('delete_repo_webhook'),
	('delete_robot'),
	('delete_tag'),
	('manifest_label_add'),
	('manifest_label_delete'),
	('modify_prototype_permission'),
	('move_tag'),
	('org_add_team_member'),
	('org_create_team'),
	('org_delete_team'),
	('org_delete_team_member_invite'),
	('org_invite_team_member'),
	('org_remove_team_member'),
	('org_set_team_description'),
	('org_set_team_role'),
	('org_team_member_invite_accepted'),
	('org_team_member_invite_declined'),
	('pull_repo'),
	('push_repo'),
	('regenerate_robot_token'),
	('repo_verb'),
	('reset_application_client_secret'),
	('revert_tag'),
	('service_key_approve'),
	('service_key_create'),
	('service_key_delete'),
	('service_key_extend'),
	('service_key_modify'),
	('service_key_rotate'),
	('setup_repo_trigger'),
	('set_repo_description'),
	('take_ownership'),
	('update_application'),
	('change_repo_trust'),
	('reset_repo_notification'),
	('change_tag_expiration'),
	('create_app_specific_token'),
	('revoke_app_specific_token'),
	('toggle_repo_trigger'),
	('repo_mirror_enabled'),
	('repo_mirror_disabled'),
	('repo_mirror_config_changed'),
	('repo_mirror_sync_started'),
	('repo_mirror_sync_failed'),
	('repo_mirror_sync_success'),
	('repo_mirror_sync_now_requested'),
	('repo_mirror_sync_tag_success'),
	('repo_mirror_sync_tag_failed'),
	('repo_mirror_sync_test_success'),
	('repo_mirror_sync_test_failed'),
	('repo_mirror_sync_test_started'),
	('change_repo_state'),
	('create_proxy_cache_config'),
	('delete_proxy_cache_config'),
	('start_build_trigger'),
	('cancel_build'),
	('org_create'),
	('org_delete'),
	('org_change_email'),
	('org_change_invoicing'),
	('org_change_tag_expiration'),
	('org_change_name'),
	('user_create'),
	('user_delete'),
	('user_disable'),
	('user_enable'),
	('user_change_email'),
	('user_change_password'),
	('user_change_name'),
	('user_change_invoicing'),
	('user_change_tag_expiration'),
	('user_change_metadata'),
	('user_generate_client_key'),
	('login_success'),
	('logout_success'),
	('permanently_delete_tag'),
	('autoprune_tag_delete'),
	('create_namespace_autoprune_policy'),
	('update_namespace_autoprune_policy'),
	('delete_namespace_autoprune_policy'),
	('login_failure'),
	('push_repo_failed'),
	('pull_repo_failed'),
	('delete_tag_failed'),
	('create_repository_autoprune_policy'),
	('update_repository_autoprune_policy'),
	('delete_repository_autoprune_policy'),
	('enable_team_sync'),
	('disable_team_sync'),
	('oauth_token_assigned'),
	('oauth_token_revoked'),
	('change_tag_immutability'),
	('create_robot_federation'),
	('delete_robot_federation'),
	('federated_robot_token_exchange'),
	('export_logs_success'),
	('export_logs_failure'),
	('org_create_quota'),
	('org_change_quota'),
	('org_delete_quota'),
	('org_create_quota_limit'),
	('org_change_quota_limit'),
	('org_delete_quota_limit'),
	('org_mirror_enabled'),
	('org_mirror_disabled'),
	('org_mirror_config_changed'),
	('org_mirror_sync_started'),
	('org_mirror_sync_failed'),
	('org_mirror_sync_success'),
	('org_mirror_sync_now_requested'),
	('org_mirror_sync_cancelled'),
	('org_mirror_repo_created'),
	('create_immutability_policy'),
	('update_immutability_policy'),
	('delete_immutability_policy'),
	('org_mirror_repo_creation_failed'),
	('tag_made_immutable_by_policy'),
	('tags_made_immutable_by_policy'),
	('create_oauth_api_token'),
	('revoke_oauth_api_token'),
	('create_namespace_notification'),
	('delete_namespace_notification'),
	('reset_namespace_notification')
) AS v
WHERE NOT EXISTS (SELECT 1 FROM logentrykind e WHERE e.name = v.column1);
