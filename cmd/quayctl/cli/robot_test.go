package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/internal/testregistry"
	"github.com/quayctl/quayctl/registry/encfield"
	"github.com/quayctl/quayctl/registry/store"
)

func clearIO[O any](t *testing.T, io **IOStreams, getenv *func(string) string) {
	t.Helper()
	if *io == nil || *getenv == nil {
		t.Error("IO or Getenv not set from the Factory")
	}
	*io, *getenv = nil, nil
}

func TestAccessCommandFlags(t *testing.T) {
	t.Run("user list", func(t *testing.T) {
		runFlagTable(t, []string{"user"}, NewCmdUserList, func(o *UserListOptions) { clearIO[UserListOptions](t, &o.IO, &o.Getenv) },
			[]flagCase[UserListOptions]{
				{name: "defaults", args: []string{"user", "list"}, want: UserListOptions{DataDir: "./quay-data", Output: OutputTable}},
				{name: "every flag", args: []string{"user", "list", "--config", "c.yaml", "--data-dir", "/d", "-o", "json"},
					want: UserListOptions{ConfigPath: "c.yaml", DataDir: "/d", Output: OutputJSON}},
				{name: "an argument", args: []string{"user", "list", "alice"}, wantStderr: usageErr("quayctl user list takes 0 argument(s): no arguments")},
			})
	})
	for _, enable := range []bool{false, true} {
		verb := map[bool]string{false: "disable", true: "enable"}[enable]
		build := func(f *Factory, runF func(*UserSetEnabledOptions) error) *cobra.Command {
			return NewCmdUserSetEnabled(f, runF, enable)
		}
		t.Run("user "+verb, func(t *testing.T) {
			runFlagTable(t, []string{"user"}, build, func(o *UserSetEnabledOptions) { clearIO[UserSetEnabledOptions](t, &o.IO, &o.Getenv) },
				[]flagCase[UserSetEnabledOptions]{
					{name: "defaults", args: []string{"user", verb, "alice"},
						want: UserSetEnabledOptions{DataDir: "./quay-data", Username: "alice", Enable: enable, Output: OutputTable}},
					{name: "yaml", args: []string{"user", verb, "alice", "-o", "yaml", "--config", "c.yaml"},
						want: UserSetEnabledOptions{ConfigPath: "c.yaml", DataDir: "./quay-data", Username: "alice", Enable: enable, Output: OutputYAML}},
					{name: "no user", args: []string{"user", verb}, wantStderr: usageErr("quayctl user " + verb + " takes 1 argument(s): USERNAME")},
				})
		})
	}
	t.Run("org create", func(t *testing.T) {
		runFlagTable(t, []string{"org"}, NewCmdOrgCreate, func(o *OrgCreateOptions) { clearIO[OrgCreateOptions](t, &o.IO, &o.Getenv) },
			[]flagCase[OrgCreateOptions]{
				{name: "defaults", args: []string{"org", "create", "acme", "--owner", "alice"},
					want: OrgCreateOptions{DataDir: "./quay-data", Name: "acme", Owner: "alice", Output: OutputTable}},
				{name: "every flag", args: []string{"org", "create", "acme", "--owner", "alice", "--email", "o@example.com", "--data-dir", "/d", "-o", "json"},
					want: OrgCreateOptions{DataDir: "/d", Name: "acme", Owner: "alice", Email: "o@example.com", Output: OutputJSON}},
				{name: "no owner", args: []string{"org", "create", "acme"},
					wantStderr: usageErr("--owner is required: the user who becomes the organization's first admin")},
				{name: "no name", args: []string{"org", "create", "--owner", "alice"}, wantStderr: usageErr("quayctl org create takes 1 argument(s): NAME")},
			})
	})
	t.Run("robot create", func(t *testing.T) {
		runFlagTable(t, []string{"robot"}, NewCmdRobotCreate, func(o *RobotCreateOptions) { clearIO[RobotCreateOptions](t, &o.IO, &o.Getenv) },
			[]flagCase[RobotCreateOptions]{
				{name: "defaults", args: []string{"robot", "create", "acme+ci"},
					want: RobotCreateOptions{DataDir: "./quay-data", Name: "acme+ci", Output: OutputTable}},
				{name: "description and json", args: []string{"robot", "create", "acme+ci", "--description", "CI", "-o", "json"},
					want: RobotCreateOptions{DataDir: "./quay-data", Name: "acme+ci", Description: "CI", Output: OutputJSON}},
				{name: "no plus", args: []string{"robot", "create", "acme"},
					wantStderr: usageErr(`robot name "acme" must be NAMESPACE+NAME, such as acme+deployer`)},
				{name: "empty short name", args: []string{"robot", "create", "acme+"},
					wantStderr: usageErr(`robot name "acme+" must be NAMESPACE+NAME, such as acme+deployer`)},
			})
	})
	t.Run("robot token", func(t *testing.T) {
		runFlagTable(t, []string{"robot"}, NewCmdRobotToken, func(o *RobotTokenOptions) { clearIO[RobotTokenOptions](t, &o.IO, &o.Getenv) },
			[]flagCase[RobotTokenOptions]{
				{name: "defaults", args: []string{"robot", "token", "acme+ci"},
					want: RobotTokenOptions{DataDir: "./quay-data", Name: "acme+ci", Output: OutputTable}},
				{name: "regenerate", args: []string{"robot", "token", "acme+ci", "--regenerate", "-o", "yaml"},
					want: RobotTokenOptions{DataDir: "./quay-data", Name: "acme+ci", Regenerate: true, Output: OutputYAML}},
				{name: "two robots", args: []string{"robot", "token", "a+b", "c+d"},
					wantStderr: usageErr("quayctl robot token takes 1 argument(s): NAMESPACE+NAME")},
			})
	})
}

var robotTokenRE = regexp.MustCompile(`\b[A-Z0-9]{64}\b`)

// TestAccessCommands runs the offline administration commands against a
// real embedded-default database, then checks that a robot created offline
// logs in to a registry serving that database (they share the generated
// DATABASE_SECRET_KEY).
func TestAccessCommands(t *testing.T) {
	needEmbeddedDefault(t)
	heavy(t)
	dir := t.TempDir()
	ctx := context.Background()
	dd := []string{"--data-dir", dir}
	if code, _, stderr := run(t, ctx, nil, "alice-pass-1\n", append([]string{"user", "create", "alice", "--password-stdin", "--email", "alice@example.com", "--superuser"}, dd...)...); code != ExitOK {
		t.Fatalf("user create: %s", stderr)
	}
	if code, _, stderr := run(t, ctx, nil, "bob-pass-12\n", append([]string{"user", "create", "bob", "--password-stdin", "--email", "bob@example.com"}, dd...)...); code != ExitOK {
		t.Fatalf("user create: %s", stderr)
	}
	var token string
	steps := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // exact, after tokens are replaced by <token>
		golden     string
		wantStderr string // substring
	}{
		{name: "org create", args: []string{"org", "create", "acme", "--owner", "alice", "--email", "acme@example.com"},
			wantStdout: "Created organization acme in the sqlite database; alice is in its owners team.\n"},
		{name: "org create json", args: []string{"org", "create", "beta", "--owner", "bob", "-o", "json"}, golden: "org_create.json.golden"},
		{name: "org exists", args: []string{"org", "create", "acme", "--owner", "alice"}, wantCode: ExitError,
			wantStderr: "a user or organization named acme already exists"},
		{name: "org name invalid", args: []string{"org", "create", "Acme_", "--owner", "alice"}, wantCode: ExitError,
			wantStderr: `invalid organization name "Acme_"`},
		{name: "org owner missing", args: []string{"org", "create", "gamma", "--owner", "nobody"}, wantCode: ExitError,
			wantStderr: "no user named nobody"},
		{name: "robot create json", args: []string{"robot", "create", "acme+ci", "--description", "CI", "-o", "json"}, golden: "robot_create.json.golden"},
		{name: "robot create table", args: []string{"robot", "create", "acme+deploy"},
			wantStdout: "Created robot acme+deploy in the sqlite database.\nToken: <token>\nLog in with: podman login -u 'acme+deploy' -p TOKEN REGISTRY\n"},
		{name: "robot exists", args: []string{"robot", "create", "acme+ci"}, wantCode: ExitError, wantStderr: "robot acme+ci already exists"},
		{name: "robot name invalid", args: []string{"robot", "create", "acme+Bad-Name"}, wantCode: ExitError, wantStderr: "invalid robot name"},
		{name: "robot namespace missing", args: []string{"robot", "create", "nowhere+ci"}, wantCode: ExitError, wantStderr: "no organization or user named nowhere"},
		{name: "robot token", args: []string{"robot", "token", "acme+ci"}, wantStdout: "<token>\n"},
		{name: "robot token yaml", args: []string{"robot", "token", "acme+ci", "-o", "yaml"}, golden: "robot_token.yaml.golden"},
		{name: "robot token unknown", args: []string{"robot", "token", "acme+nobody"}, wantCode: ExitError, wantStderr: "no robot named acme+nobody"},
		{name: "user disable", args: []string{"user", "disable", "bob"}, wantStdout: "User bob is now disabled.\n"},
		{name: "user disable again", args: []string{"user", "disable", "bob"}, wantStdout: "User bob is already disabled.\n"},
		{name: "user list", args: []string{"user", "list"}, golden: "user_list.txt.golden"},
		{name: "user list json", args: []string{"user", "list", "-o", "json"}, golden: "user_list.json.golden"},
		{name: "user enable json", args: []string{"user", "enable", "bob", "-o", "json"}, golden: "user_enable.json.golden"},
		{name: "user disable unknown", args: []string{"user", "disable", "acme"}, wantCode: ExitError, wantStderr: "no user named acme"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			code, stdout, stderr := run(t, ctx, nil, "", append(s.args, dd...)...)
			if code != s.wantCode {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, s.wantCode, stderr)
			}
			if s.name == "robot create json" {
				var res robotResult
				if err := json.Unmarshal([]byte(stdout), &res); err != nil || len(res.Token) != 64 {
					t.Fatalf("robot create output %q: %v", stdout, err)
				}
				token = res.Token
			}
			if s.name == "robot token" && strings.TrimSpace(stdout) != token {
				t.Errorf("robot token printed %q, want the token from create", stdout)
			}
			if token != "" && strings.Contains(stderr, token) {
				t.Error("a token appeared in the log")
			}
			norm := robotTokenRE.ReplaceAllString(stdout, "<token>")
			switch {
			case s.golden != "":
				golden(t, s.golden, norm)
			case s.wantCode == ExitOK && norm != s.wantStdout:
				t.Errorf("stdout = %q, want %q", norm, s.wantStdout)
			}
			if s.wantStderr != "" && !strings.Contains(stderr, s.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", s.wantStderr, stderr)
			}
		})
	}
	// The key the commands generated is the embedded default's: 0600, and
	// the stored token is Quay's encrypted field.
	fi, err := os.Stat(filepath.Join(dir, encfield.SecretKeyFileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	st := openTestStore(t, dir)
	robot, err := st.UserByName(ctx, "acme+ci")
	if err != nil {
		t.Fatal(err)
	}
	if stored, err := st.RobotToken(ctx, robot.ID); err != nil || !strings.HasPrefix(stored, "v0$$") {
		t.Fatalf("stored token %q, %v", stored, err)
	}
	for kind, want := range map[string]int{"org_create": 2, "create_robot": 2, "user_disable": 1, "user_enable": 1} {
		logs, err := st.Logs(ctx, store.LogQuery{Kind: kind})
		if err != nil || len(logs) != want {
			t.Errorf("%s audit rows: %d (%v), want %d", kind, len(logs), err, want)
		}
	}
	st.Close()

	// A registry on this database accepts the robot created offline.
	reg := testregistry.Start(t, "sqlite:///"+filepath.Join(dir, "quay.db"), nil)
	q := url.Values{"service": {reg.Addr}, "scope": {"repository:acme/app:pull"}}
	req, _ := http.NewRequest("GET", reg.URL+"/v2/auth?"+q.Encode(), nil)
	req.SetBasicAuth("acme+ci", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("robot login on the registry: %d", resp.StatusCode)
	}
	// Regenerating replaces the token.
	code, stdout, stderr := run(t, ctx, nil, "", append([]string{"robot", "token", "acme+ci", "--regenerate", "-o", "json"}, dd...)...)
	var res robotResult
	if code != ExitOK || json.Unmarshal([]byte(stdout), &res) != nil || res.Token == token || !res.Regenerated {
		t.Fatalf("regenerate: %d %s %s", code, stdout, stderr)
	}
	req.SetBasicAuth("acme+ci", token)
	if resp, err = http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("old token after regenerate: %d, want 401", resp.StatusCode)
		}
	}
}
