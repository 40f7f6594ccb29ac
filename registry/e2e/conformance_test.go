package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/registry/server"
)

// conformanceSwitches turns every API and data switch of the official OCI
// conformance suite on: nothing is left as a skip.
var conformanceSwitches = []string{
	"OCI_API_PULL", "OCI_API_PUSH", "OCI_API_BLOBS_ATOMIC", "OCI_API_BLOBS_DELETE", "OCI_API_BLOBS_DIGEST_HEADER",
	"OCI_API_BLOBS_MOUNT_ANONYMOUS", "OCI_API_BLOBS_UPLOAD_CANCEL", "OCI_API_MANIFESTS_ATOMIC", "OCI_API_MANIFESTS_DELETE",
	"OCI_API_MANIFESTS_DIGEST_HEADER", "OCI_API_MANIFESTS_TAG_PARAM", "OCI_API_TAGS_ATOMIC", "OCI_API_TAGS_DELETE",
	"OCI_API_TAGS_LIST", "OCI_API_REFERRER",
	"OCI_DATA_IMAGE", "OCI_DATA_INDEX", "OCI_DATA_INDEX_LIST", "OCI_DATA_SPARSE", "OCI_DATA_ARTIFACT", "OCI_DATA_SUBJECT",
	"OCI_DATA_SUBJECT_MISSING", "OCI_DATA_ARTIFACT_LIST", "OCI_DATA_SUBJECT_LIST", "OCI_DATA_DATA_FIELD",
	"OCI_DATA_NONDISTRIBUTABLE", "OCI_DATA_CUSTOM_FIELDS", "OCI_DATA_NO_LAYERS", "OCI_DATA_EMPTY_BLOB", "OCI_DATA_SHA512",
}

func conformanceBin(t *testing.T) string {
	if p := os.Getenv("QUAYCTL_CONFORMANCE_BIN"); p != "" {
		return p
	}
	if p, err := exec.LookPath("conformance"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("the OCI conformance suite is not installed; run scripts/install-test-deps.sh (make test does)")
	}
	t.Skip("SKIPPED LOUDLY: OCI conformance suite not installed; run make test to install it")
	return ""
}

// TestConformance runs the whole official suite, every switch on, once per
// database, and requires zero failures and zero skips.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("conformance suite is a heavy end-to-end run")
	}
	bin := conformanceBin(t)
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			reg := startRegistry(t, newDB(t), func(s *server.Settings) {
				// The suite pushes sparse manifests on purpose.
				s.SparseIndex, s.SparseManifests = true, true
			})
			reg.createUser(t, "conformance", "conformance-pass")
			results := t.TempDir()
			cmd := exec.Command(bin)
			cmd.Dir = results
			cmd.Env = append(os.Environ(),
				"OCI_REGISTRY="+reg.Addr, "OCI_TLS=disabled", "OCI_REPO1=conformance/repo1", "OCI_REPO2=conformance/repo2",
				"OCI_USERNAME=conformance", "OCI_PASSWORD=conformance-pass", "OCI_RESULTS_DIR="+results, "OCI_VERSION=1.1")
			for _, sw := range conformanceSwitches {
				cmd.Env = append(cmd.Env, sw+"=true")
			}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			yaml, _ := os.ReadFile(filepath.Join(results, "results.yaml"))
			summary := summaryLines(out.String())
			t.Logf("conformance summary (%s):\n%s", name, summary)
			if err != nil {
				t.Fatalf("conformance suite failed: %v\n%s\n--- failing details ---\n%s", err, out.String(), failures(string(yaml)))
			}
			for _, bad := range []string{"fail", "error", "skip"} {
				if n := countStatus(string(yaml), bad); n > 0 {
					t.Errorf("%d tests with status %s\n%s", n, bad, failures(string(yaml)))
				}
			}
		})
	}
}

func summaryLines(out string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "Pass") || strings.Contains(l, "Fail") || strings.Contains(l, "Skip") || strings.Contains(l, "Total") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

var statusRE = regexp.MustCompile(`(?m)^\s*status:\s*(\w+)`)

func countStatus(yaml, status string) int {
	n := 0
	for _, m := range statusRE.FindAllStringSubmatch(yaml, -1) {
		if strings.EqualFold(m[1], status) {
			n++
		}
	}
	return n
}

// failures extracts the parts of results.yaml that are not passes.
func failures(yaml string) string {
	var b strings.Builder
	lines := strings.Split(yaml, "\n")
	for i, l := range lines {
		if m := statusRE.FindStringSubmatch(l); m != nil && !strings.EqualFold(m[1], "pass") {
			lo, hi := max(0, i-3), min(len(lines), i+12)
			b.WriteString(strings.Join(lines[lo:hi], "\n") + "\n...\n")
			if b.Len() > 20000 {
				break
			}
		}
	}
	return b.String()
}
