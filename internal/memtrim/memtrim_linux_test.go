package memtrim

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// rssFile is this process's resident file-backed memory (RssFile), in KiB.
func rssFile(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "RssFile:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// TestAfterStartup: the test binary's own start-up touched its executable;
// afterwards most of that is no longer resident, and the process still
// runs code it needs (this test continuing is the proof).
func TestAfterStartup(t *testing.T) {
	before := rssFile(t)
	advised, err := AfterStartup()
	if err != nil {
		t.Fatalf("AfterStartup: %v", err)
	}
	after := rssFile(t)
	t.Logf("advised %d KiB of mappings; RssFile %d KiB -> %d KiB", advised/1024, before, after)
	if advised == 0 {
		t.Fatal("no mapping of the executable was advised")
	}
	if after*2 > before {
		t.Errorf("RssFile went from %d KiB to %d KiB, want it at least halved", before, after)
	}
}
