package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
)

// Resident memory of a process, read from Linux's /proc/<pid>/status, for the
// benchmarks' memory targets. pid "self" is the test binary itself.

const mib = 1 << 20

// procStatusKiB returns a "kB" field of /proc/<pid>/status (VmRSS, VmHWM).
func procStatusKiB(pid, field string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok || string(name) != field {
			continue
		}
		f := bytes.Fields(rest) // "123456 kB"
		if len(f) == 0 {
			break
		}
		return strconv.ParseInt(string(f[0]), 10, 64)
	}
	return 0, fmt.Errorf("/proc/%s/status has no %s", pid, field)
}

// rssBytes is the current resident set size of pid.
func rssBytes(pid string) (int64, error) {
	kib, err := procStatusKiB(pid, "VmRSS")
	return kib << 10, err
}

// idleRSS is this process's resident set once the Go heap has been
// collected and its free pages returned to the kernel.
func idleRSS() (int64, error) {
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(200 * time.Millisecond)
	return rssBytes("self")
}

// rssPeak follows the resident set of a process during a transfer. It polls
// VmRSS every interval and, where the kernel allows it (writing 5 to
// /proc/<pid>/clear_refs), resets the kernel's high-water mark VmHWM at the
// start so that a spike between two polls is not missed either.
type rssPeak struct {
	pid     string
	hwm     bool // VmHWM was reset at the start and is meaningful
	stop    chan struct{}
	done    sync.WaitGroup
	mu      sync.Mutex
	sampled int64
	samples int
}

func watchRSS(pid string, interval time.Duration) *rssPeak {
	p := &rssPeak{pid: pid, stop: make(chan struct{})}
	p.hwm = os.WriteFile("/proc/"+pid+"/clear_refs", []byte("5"), 0) == nil
	p.sample()
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tk.C:
				p.sample()
			}
		}
	}()
	return p
}

func (p *rssPeak) sample() {
	n, err := rssBytes(p.pid)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.sampled = max(p.sampled, n)
	p.samples++
	p.mu.Unlock()
}

// Stop ends the watch and returns the peak resident set in bytes: the larger
// of the polled maximum and the kernel's high-water mark.
func (p *rssPeak) Stop() (peak int64, detail string) {
	p.sample()
	close(p.stop)
	p.done.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	peak = p.sampled
	detail = fmt.Sprintf("polled max %.1f MiB over %d samples", float64(p.sampled)/mib, p.samples)
	if p.hwm {
		if kib, err := procStatusKiB(p.pid, "VmHWM"); err == nil {
			peak = max(peak, kib<<10)
			detail += fmt.Sprintf(", VmHWM %.1f MiB", float64(kib<<10)/mib)
		}
	}
	return peak, detail
}
