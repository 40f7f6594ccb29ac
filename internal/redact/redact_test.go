package redact

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

// lines reads a testdata file, without comments and blank lines.
func lines(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for l := range strings.Lines(string(b)) {
		l = strings.TrimSuffix(l, "\n")
		if l == "" || strings.HasPrefix(l, "# ") {
			continue
		}
		out = append(out, l)
	}
	return out
}

// noSecrets fails when out holds a seeded secret: anything containing SEED
// (case-insensitively) or a line of testdata/secrets.txt.
func noSecrets(t *testing.T, what, out string) {
	t.Helper()
	for i, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "# ") {
			continue // the corpus's own comments
		}
		if strings.Contains(strings.ToUpper(l), "SEED") {
			t.Errorf("%s line %d still holds a seeded secret: %q", what, i+1, l)
		}
	}
	for _, s := range lines(t, "secrets.txt") {
		if strings.Contains(out, s) {
			t.Errorf("%s still holds seeded secret %q", what, s)
		}
	}
}

func TestStringRules(t *testing.T) {
	tests := []struct {
		name, in, want string
		rule           string // expected in the summary
	}{
		{"db uri keeps structure", "DB_URI: postgresql://quay:s3cr3t@db:5432/quay", "DB_URI: postgresql://quay:<redacted>@db:5432/quay", RuleURIPassword},
		{"uri with @ in password", "postgresql://quay:p@ss@db/quay", "postgresql://quay:<redacted>@db/quay", RuleURIPassword},
		{"uri with / in password", "postgresql://quay:pa/ss@db/quay", "postgresql://quay:<redacted>@db/quay", RuleURIPassword},
		{"uri empty user", "redis://:pw1@redis:6379", "redis://:<redacted>@redis:6379", RuleURIPassword},
		{"uri in quotes", `"amqp://u:p4ss@mq/vh"`, `"amqp://u:<redacted>@mq/vh"`, RuleURIPassword},
		{"uri token user", "https://ghp_abcdef0123456789ABCDEF@github.com/x", "https://<redacted>@github.com/x", RuleURIToken},
		{"authorization bearer", "Authorization: Bearer abc.def", "Authorization: Bearer <redacted>", RuleAuthHeader},
		{"authorization basic dict", "{'Authorization': 'Basic dXNlcjpw'}", "{'Authorization': 'Basic <redacted>'}", RuleAuthHeader},
		{"authorization no scheme", "authorization=xyz", "authorization=<redacted>", RuleAuthHeader},
		{"proxy authorization", "Proxy-Authorization: Basic Zm9v", "Proxy-Authorization: Basic <redacted>", RuleAuthHeader},
		{"cookie", "Cookie: a=1; b=2", "Cookie: <redacted>", RuleCookie},
		{"set-cookie in json", `{"Set-Cookie": "s=1; Path=/", "x": "y"}`, `{"Set-Cookie": "<redacted>", "x": "y"}`, RuleCookie},
		{"bare bearer", "got Bearer abcdef0123456789xyz ok", "got Bearer <redacted> ok", RuleBearer},
		{"jwt", "t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln x", "t=<redacted> x", RuleJWT},
		{"jwt alg none", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "<redacted>", RuleJWT},
		{"aws key id", "id AKIAIOSFODNN7EXAMPLE.", "id <redacted>.", RuleAWSKeyID},
		{"aws sts key id", "ASIAIOSFODNN7EXAMPLE", "<redacted>", RuleAWSKeyID},
		{"aws secret kv", "aws_secret_access_key = wJalr/K7MDENG", "aws_secret_access_key = <redacted>", RuleKeyValue},
		{"env line", "POSTGRESQL_PASSWORD=pw", "POSTGRESQL_PASSWORD=<redacted>", RuleKeyValue},
		{"yaml line to end", "  password: two words", "  password: <redacted>", RuleKeyValue},
		{"yaml list item", "- secret_key: x", "- secret_key: <redacted>", RuleKeyValue},
		{"json", `{"password": "a\"b", "user": "u"}`, `{"password": "<redacted>", "user": "u"}`, RuleKeyValue},
		{"escaped json", `{\"password\": \"pw\", \"u\": 1}`, `{\"password\": \"<redacted>\", \"u\": 1}`, RuleKeyValue},
		{"python dict", "{'client_secret': 'cs', 'client_id': 'ci'}", "{'client_secret': '<redacted>', 'client_id': 'ci'}", RuleKeyValue},
		{"query string", "https://h/?a=1&token=t0k&b=2", "https://h/?a=1&token=<redacted>&b=2", RuleKeyValue},
		{"pair inside a value", "url=https://h/?token=t0k", "url=https://h/?token=<redacted>", RuleKeyValue},
		{"camel case", "accessKey=ak1 apiKey=ak2", "accessKey=<redacted> apiKey=<redacted>", RuleKeyValue},
		{"header key", "X-Api-Key: k1", "X-Api-Key: <redacted>", RuleKeyValue},
		{"presigned signature", "?X-Amz-Signature=abc&X-Amz-Credential=cred", "?X-Amz-Signature=<redacted>&X-Amz-Credential=<redacted>", RuleKeyValue},
		{"azure sig", "?sv=1&sig=abc%3D&se=2", "?sv=1&sig=<redacted>&se=2", RuleKeyValue},
		{"cli flag", "psql --password pw -U x", "psql --password <redacted> -U x", RuleCLIFlag},
		{"cli flag = form", "podman login --password=pw", "podman login --password=<redacted>", RuleKeyValue},
		{"pem one line", `"-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----"`, `"-----BEGIN RSA PRIVATE KEY-----<redacted>-----END RSA PRIVATE KEY-----"`, RulePEM},
		{"pem multi line", "a\n-----BEGIN PRIVATE KEY-----\nMIIE\nxyz\n-----END PRIVATE KEY-----\nb", "a\n-----BEGIN PRIVATE KEY-----\n<redacted>\n-----END PRIVATE KEY-----\nb", RulePEM},
		{"pem unterminated", "-----BEGIN EC PRIVATE KEY-----\nMHcC\n", "-----BEGIN EC PRIVATE KEY-----\n<redacted>\n", RulePEM},
		{"pem pgp", "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQd\n-----END PGP PRIVATE KEY BLOCK-----", "-----BEGIN PGP PRIVATE KEY BLOCK-----\n<redacted>\n-----END PGP PRIVATE KEY BLOCK-----", RulePEM},
		{"already redacted", "password: <redacted>", "password: <redacted>", ""},
		{"already redacted uri", "postgresql://quay:<redacted>@db/quay", "postgresql://quay:<redacted>@db/quay", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, sum := String(tt.in)
			if got != tt.want {
				t.Errorf("String(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			if tt.rule == "" {
				if sum.Total() != 0 {
					t.Errorf("summary = %v, want nothing", sum)
				}
			} else if sum[tt.rule] == 0 {
				t.Errorf("summary = %v, want a count for %s", sum, tt.rule)
			}
			// Idempotent: redacting twice changes nothing more.
			again, sum2 := String(got)
			if again != got || sum2.Total() != 0 {
				t.Errorf("second pass: %q (%v)", again, sum2)
			}
		})
	}
}

func TestLookalikesSurvive(t *testing.T) {
	for _, l := range lines(t, "lookalikes.txt") {
		got, sum := String(l)
		if got != l || sum.Total() != 0 {
			t.Errorf("look-alike changed:\n  in  %q\n  out %q (%v)", l, got, sum)
		}
	}
	// And all at once: the multi-line state (PEM) must not swallow anything.
	all := strings.Join(lines(t, "lookalikes.txt"), "\n") + "\n"
	if got, _ := String(all); got != all {
		t.Errorf("look-alikes changed as one text:\n%s", got)
	}
}

func TestCorpus(t *testing.T) {
	in, err := os.ReadFile("testdata/corpus.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, sum := String(string(in))
	noSecrets(t, "String(corpus.txt)", got)
	golden(t, "corpus.golden", got)
	golden(t, "corpus.summary.golden", sum.String()+"\n")

	// The Writer gives the same text, however the stream is split.
	for seed := range uint64(20) {
		var out bytes.Buffer
		w := Writer(&out)
		rnd := rand.New(rand.NewPCG(seed, seed))
		rest := in
		for len(rest) > 0 {
			n := min(len(rest), 1+rnd.IntN(64))
			if _, err := w.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if out.String() != got {
			t.Fatalf("Writer (seed %d) differs from String:\n%s", seed, out.String())
		}
		if !reflect.DeepEqual(w.Summary(), sum) {
			t.Errorf("Writer summary %v, String summary %v", w.Summary(), sum)
		}
	}
}

func TestConfig(t *testing.T) {
	b, err := os.ReadFile("testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	before, _ := yaml.Marshal(cfg)
	red, sum := Config(cfg)
	out, err := yaml.Marshal(red)
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := yaml.Marshal(cfg); !bytes.Equal(before, after) {
		t.Error("Config modified its input")
	}
	noSecrets(t, "Config(config.yaml)", string(out))
	// Every KEEP value of the input survives.
	keep := regexp.MustCompile(`KEEP[A-Za-z0-9._\-]*`)
	for l := range strings.Lines(string(b)) {
		if strings.HasPrefix(l, "#") {
			continue
		}
		for _, word := range keep.FindAllString(l, -1) {
			if !strings.Contains(string(out), word) {
				t.Errorf("look-alike %q was redacted", word)
			}
		}
	}
	golden(t, "config.golden.yaml", string(out))
	golden(t, "config.summary.golden", sum.String()+"\n")

	// Structure kept: DB_URI host and database, booleans, empty values.
	if got := red["DB_URI"]; got != "postgresql://quayuser:<redacted>@postgresql-quay:5432/quay?sslmode=require" {
		t.Errorf("DB_URI = %v", got)
	}
	if red["FEATURE_APP_SPECIFIC_TOKENS"] != true {
		t.Errorf("FEATURE_APP_SPECIFIC_TOKENS = %v", red["FEATURE_APP_SPECIFIC_TOKENS"])
	}
	notifier := red["CUSTOM_NOTIFIER"].(map[string]any)
	if notifier["empty_password"] != "" || notifier["null_secret"] != nil || notifier["port"] != 8443 {
		t.Errorf("empty, null or numeric look-alikes changed: %v", notifier)
	}
}

// TestQuaySecretKeys: every key of quay-facts §3.2 is secret on its own,
// under its own spelling and lower case, whatever its depth.
func TestQuaySecretKeys(t *testing.T) {
	keys := []string{
		"SECRET_KEY", "DATABASE_SECRET_KEY", "DB_URI", "MAIL_PASSWORD", "LDAP_ADMIN_PASSWD",
		"KEYSTONE_ADMIN_PASSWORD", "RECAPTCHA_SECRET_KEY", "PAGE_TOKEN_KEY", "ENABLE_HEALTH_DEBUG_SECRET",
		"SECURITY_SCANNER_V4_PSK", "STRIPE_SECRET_KEY", "SENTRY_DSN", "IP_DATA_API_KEY",
		"CLOUDWATCH_AWS_ACCESS_KEY", "CLOUDWATCH_AWS_SECRET_KEY", "password", "CLIENT_SECRET",
		"CONSUMER_KEY", "CONSUMER_SECRET", "s3_access_key", "s3_secret_key", "aws_session_token",
		"access_key", "secret_key", "sts_user_access_key", "sts_user_secret_key", "azure_account_key",
		"sas_token", "swift_password", "temp_url_key", "os_options", "cloudfront_key_id",
		"akamai_shared_secret", "aws_access_key", "aws_secret_key", "bearer_token", "hec_token",
		"search_token", "dt_api_token", "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "QUAY_PASSWORD",
		"K8S_API_TLS_KEY", "SERVICE_ACCOUNT_TOKEN", "REDIS_PASSWORD", "QUAY_OVERRIDE_CONFIG",
		"CONFIG_APP_PASSWORD", "enable_health_debug_secret", "page_token_key", "ldap_admin_passwd",
		"security_scanner_v4_psk", "database_secret_key", "db_uri",
	}
	for _, k := range keys {
		if !IsSecretKey(k) {
			t.Errorf("IsSecretKey(%q) = false", k)
		}
		m := map[string]any{"A": map[string]any{"B": []any{map[string]any{k: "v"}}}}
		red, sum := Config(m)
		v := red["A"].(map[string]any)["B"].([]any)[0].(map[string]any)[k]
		if v != Marker || sum.Total() != 1 {
			t.Errorf("nested %s = %v (%v)", k, v, sum)
		}
	}
}

func TestKeyNames(t *testing.T) {
	tests := []struct {
		key    string
		secret bool
	}{
		{"MY_APP_PASSWORD", true}, {"db.password", true}, {"clientSecret", true}, {"X-Api-Key", true},
		{"GITHUB_TOKEN", true}, {"MYSQL_PWD", true}, {"PRIVATE_KEY", true}, {"privateKey", true},
		{"AWS_ACCESS_KEY_ID", true}, {"passphrase", true}, {"CREDENTIALS", true}, {"X-Amz-Signature", true},
		{"sig", true}, {"apikey", true}, {"Authorization", true}, {"X-Registry-Auth", true},
		{"KEY_ID", false}, {"key", false}, {"KEY", false}, {"PWD", false}, {"FEATURE_APP_SPECIFIC_TOKENS", false},
		{"APP_SPECIFIC_TOKEN_EXPIRATION", false}, {"USER_RECOVERY_TOKEN_LIFETIME", false},
		{"EXPIRED_APP_SPECIFIC_TOKEN_GC", false}, {"INSTANCE_SERVICE_KEY_LOCATION", false},
		{"INSTANCE_SERVICE_KEY_KID_LOCATION", false}, {"LABEL_KEY_RESERVED_PREFIXES", false},
		{"RECAPTCHA_SITE_KEY", false}, {"STRIPE_PUBLISHABLE_KEY", false}, {"MIXPANEL_KEY", false},
		{"configBundleSecret", false}, {"secretName", false}, {"token_type", false},
		{"cloudfront_privatekey_filename", false}, {"PASSWORD_FILE", false}, {"password_reset_url", false},
		{"SERVER_HOSTNAME", false}, {"DEBUGLOG", false}, {"keyring", false}, {"monkey", false},
	}
	for _, tt := range tests {
		if got := IsSecretKey(tt.key); got != tt.secret {
			t.Errorf("IsSecretKey(%q) = %v, want %v (normalised %s)", tt.key, got, tt.secret, NormalizeKey(tt.key))
		}
	}
}

func TestNormalizeKey(t *testing.T) {
	for in, want := range map[string]string{
		"db_uri": "DB_URI", "clientSecret": "CLIENT_SECRET", "X-Api-Key": "X_API_KEY",
		"HTTPServerToken": "HTTP_SERVER_TOKEN", "K8S_API_TLS_KEY": "K8S_API_TLS_KEY",
		"spring.datasource.password": "SPRING_DATASOURCE_PASSWORD", "--password": "PASSWORD",
		"awsSecretAccessKey": "AWS_SECRET_ACCESS_KEY", "dbURI": "DB_URI",
	} {
		if got := NormalizeKey(in); got != want {
			t.Errorf("NormalizeKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConfigValueShapes(t *testing.T) {
	in := map[string]any{
		"os_options":     map[string]any{"tenant_id": "t", "n": 3, "on": true, "list": []any{"a", ""}},
		"SECRET_KEY":     12345,
		"SENTRY_DSN":     "not-a-url-secret",
		"DB_URI":         "sqlite:////data/quay.db",
		"QUAY_PASSWORD":  []string{"a", "b"},
		"yaml2":          map[any]any{"password": "p", 1: "x"},
		"REDIS_PASSWORD": "<redacted>",
	}
	red, sum := Config(in)
	want := map[string]any{
		"os_options":     map[string]any{"tenant_id": Marker, "n": Marker, "on": true, "list": []any{Marker, ""}},
		"SECRET_KEY":     Marker,
		"SENTRY_DSN":     Marker,
		"DB_URI":         "sqlite:////data/quay.db",
		"QUAY_PASSWORD":  []string{Marker, Marker},
		"yaml2":          map[any]any{"password": Marker, 1: "x"},
		"REDIS_PASSWORD": "<redacted>",
	}
	if !reflect.DeepEqual(red, want) {
		t.Errorf("Config =\n%#v\nwant\n%#v", red, want)
	}
	if got := sum.String(); got != "5 values redacted (quay-config-key: 5)" {
		t.Errorf("summary = %s", got)
	}
	if r, s := Config(nil); r != nil || s.Total() != 0 {
		t.Errorf("Config(nil) = %v, %v", r, s)
	}
}

func TestEnv(t *testing.T) {
	env := map[string]string{
		"POSTGRESQL_PASSWORD":   "pgpw",
		"POSTGRESQL_USER":       "quay",
		"DEBUGLOG":              "true",
		"QUAY_OVERRIDE_CONFIG":  `{"SECRET_KEY":"sk","FEATURE_QUOTA_MANAGEMENT":true,"DB_URI":"postgresql://u:dbpw@db/quay"}`,
		"CONFIG_APP_PASSWORD":   "cap",
		"DATABASE_URL":          "postgres://u:urlpw@db:5432/x",
		"AWS_SECRET_ACCESS_KEY": "aws",
		"SOME_TOKEN":            "false",
		"EMPTY_SECRET":          "",
		"PATH":                  "/usr/bin",
	}
	got, sum := Env(env)
	want := map[string]string{
		"POSTGRESQL_PASSWORD":   Marker,
		"POSTGRESQL_USER":       "quay",
		"DEBUGLOG":              "true",
		"QUAY_OVERRIDE_CONFIG":  `{"DB_URI":"postgresql://u:<redacted>@db/quay","FEATURE_QUOTA_MANAGEMENT":true,"SECRET_KEY":"<redacted>"}`,
		"CONFIG_APP_PASSWORD":   Marker,
		"DATABASE_URL":          "postgres://u:<redacted>@db:5432/x",
		"AWS_SECRET_ACCESS_KEY": Marker,
		"SOME_TOKEN":            "false",
		"EMPTY_SECRET":          "",
		"PATH":                  "/usr/bin",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Env =\n%v\nwant\n%v", got, want)
	}
	if sum.Total() != 6 {
		t.Errorf("summary = %v, want 6", sum)
	}
}

func TestHeader(t *testing.T) {
	h := http.Header{
		"Authorization":   {"Bearer tok123"},
		"Cookie":          {"a=b"},
		"X-Registry-Auth": {"eyJ1c2VybmFtZSI6InUifQ=="},
		"User-Agent":      {"podman/4.3.1"},
		"Location":        {"https://u:pw@h/x"},
	}
	got, sum := Header(h)
	want := http.Header{
		"Authorization":   {"Bearer <redacted>"},
		"Cookie":          {Marker},
		"X-Registry-Auth": {Marker},
		"User-Agent":      {"podman/4.3.1"},
		"Location":        {"https://u:<redacted>@h/x"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Header =\n%v\nwant\n%v", got, want)
	}
	if sum.Total() != 4 {
		t.Errorf("summary = %v", sum)
	}
}

func TestWithRules(t *testing.T) {
	r, err := New(WithRules(`^SITE_CRED$`, `MIXPANEL`), WithTextRules(`sessionid=(\w+)`, `INTERNAL-[0-9]{4}`))
	if err != nil {
		t.Fatal(err)
	}
	got, sum := r.String("SITE_CRED=abc sessionid=xyz123 ticket INTERNAL-1234 MIXPANEL_KEY=m")
	want := "SITE_CRED=<redacted> sessionid=<redacted> ticket <redacted> MIXPANEL_KEY=<redacted>"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if sum["rule:^SITE_CRED$"] != 1 || sum[`rule:sessionid=(\w+)`] != 1 || sum["rule:INTERNAL-[0-9]{4}"] != 1 || sum["rule:MIXPANEL"] != 1 {
		t.Errorf("summary = %v", sum)
	}
	cfg, _ := r.Config(map[string]any{"nested": map[string]any{"site_cred": "x"}})
	if cfg["nested"].(map[string]any)["site_cred"] != Marker {
		t.Errorf("custom key rule not applied in Config: %v", cfg)
	}
	// The default redactor is not affected.
	if got, _ := String("SITE_CRED=abc"); got != "SITE_CRED=abc" {
		t.Errorf("default redactor changed: %q", got)
	}
	if _, err := New(WithRules("(")); err == nil || !strings.Contains(err.Error(), `key rule "("`) {
		t.Errorf("bad pattern error = %v", err)
	}
	if _, err := New(WithTextRules("[")); err == nil {
		t.Error("bad text pattern accepted")
	}
}

func TestSummaryNeverHoldsValues(t *testing.T) {
	_, sum := String("password=hunter2 " + "Authorization: Bearer tok0123456789abcdef")
	if s := fmt.Sprint(sum) + sum.String(); strings.Contains(s, "hunter2") || strings.Contains(s, "tok0123") {
		t.Errorf("summary leaks a value: %s", s)
	}
	if got := (Summary{}).String(); got != "nothing redacted" {
		t.Errorf("empty summary = %q", got)
	}
	if got := (Summary{RuleJWT: 1}).String(); got != "1 value redacted (jwt: 1)" {
		t.Errorf("one = %q", got)
	}
}

// TestWriterBoundedMemory streams a long log through the Writer: memory
// stays at one line, and each line is redacted.
func TestWriterBoundedMemory(t *testing.T) {
	pr, pw := io.Pipe()
	w := Writer(pw)
	go func() {
		line := []byte("gunicorn-web stdout | connecting to postgresql://quay:SEEDpw@db/quay with password=SEEDpw2\n")
		for range 20000 {
			if _, err := w.Write(line); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(w.Close())
	}()
	sc := bufio.NewScanner(pr)
	n := 0
	for sc.Scan() {
		n++
		if strings.Contains(sc.Text(), "SEED") {
			t.Fatalf("line %d leaks: %s", n, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 20000 {
		t.Errorf("%d lines, want 20000", n)
	}
	if cap(w.buf) > 4096 {
		t.Errorf("buffer grew to %d bytes for short lines", cap(w.buf))
	}
	if w.Summary()[RuleURIPassword] != 20000 || w.Summary()[RuleKeyValue] != 20000 {
		t.Errorf("summary = %v", w.Summary())
	}
}

func TestWriterLongLine(t *testing.T) {
	var out bytes.Buffer
	w := Writer(&out)
	w.max = 1000
	long := strings.Repeat("word ", 1000) + "password=SEEDlong\n"
	if _, err := w.Write([]byte(long)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "SEED") {
		t.Error("secret at the end of a long line survived")
	}
	if strings.Count(out.String(), "\n") != 1 || len(out.String()) < 5000 {
		t.Errorf("long line not kept whole: %d bytes, %d newlines", out.Len(), strings.Count(out.String(), "\n"))
	}
	if cap(w.buf) > 2*1000+512 {
		t.Errorf("buffer grew to %d with max 1000", cap(w.buf))
	}
}

func TestWriterCloseAndErrors(t *testing.T) {
	var out bytes.Buffer
	w := Writer(&out)
	_, _ = w.Write([]byte("token=abc"))
	if out.Len() != 0 {
		t.Errorf("partial line written before newline or Close: %q", out.String())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "token=<redacted>" {
		t.Errorf("Close flushed %q", out.String())
	}
	if _, err := w.Write([]byte("x\n")); err == nil {
		t.Error("Write after Close succeeded")
	}
	fw := Writer(failWriter{})
	if _, err := fw.Write([]byte("a\n")); err == nil {
		t.Error("write error not returned")
	}
	if _, err := fw.Write([]byte("b\n")); err == nil {
		t.Error("write error not sticky")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func BenchmarkWriterPlainLog(b *testing.B) {
	line := []byte("gunicorn-registry stdout | 2024-03-01 10:00:00,000 [88] [INFO] [gunicorn.access] 10.0.0.1 - - \"GET /v2/ns/repo/manifests/latest HTTP/1.1\" 200 1234\n")
	w := Writer(io.Discard)
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		_, _ = w.Write(line)
	}
}

func BenchmarkWriterSecretLog(b *testing.B) {
	line := []byte("gunicorn-registry stdout | connecting to postgresql://quay:pw@db/quay token=abc Authorization: Bearer abc0123456789abcdef\n")
	w := Writer(io.Discard)
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		_, _ = w.Write(line)
	}
}
