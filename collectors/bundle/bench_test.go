package bundle_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/quayctl/quayctl/collectors/gather"
)

// vmKiB reads a "kB" field of /proc/self/status (VmRSS, VmHWM).
func vmKiB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if ok && string(name) == field {
			if f := bytes.Fields(rest); len(f) > 0 {
				n, _ := strconv.ParseInt(string(f[0]), 10, 64)
				return n
			}
		}
	}
	return 0
}

// peakRSS polls VmRSS and, where the kernel lets it reset the high-water
// mark (clear_refs 5), reads VmHWM too, so a spike between polls counts.
func peakRSS(run func()) (int64, bool) {
	runtime.GC()
	debug.FreeOSMemory()
	hwm := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	var mu sync.Mutex
	peak := vmKiB("VmRSS")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				mu.Lock()
				peak = max(peak, vmKiB("VmRSS"))
				mu.Unlock()
			}
		}
	}()
	run()
	close(stop)
	wg.Wait()
	if hwm {
		peak = max(peak, vmKiB("VmHWM"))
	}
	return peak << 10, hwm
}

// genLog writes size bytes of log lines, a few with secrets to redact.
func genLog(size int64) func(w io.Writer) error {
	return func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 32<<10)
		var n int64
		for i := 0; n < size; i++ {
			var k int
			var err error
			if i%1000 == 0 {
				k, err = fmt.Fprintf(bw, "2026-01-02T03:04:05Z DEBUG %09d headers: Authorization: Bearer SEED-bundle-bearer-06\n", i)
			} else {
				k, err = fmt.Fprintf(bw, "2026-01-02T03:04:05Z INFO %09d 10.0.0.7 - - \"GET /v2/library/nginx/manifests/latest HTTP/1.1\" 200 1571 \"-\" \"containers/5.23.1\"\n", i)
			}
			if err != nil {
				return err
			}
			n += int64(k)
		}
		return bw.Flush()
	}
}

// BenchmarkBundleLargeLogs collects a bundle holding 1 GiB of logs (two
// components of 520 MiB, each kept whole) and reports the process's peak
// resident memory; the target is under 100 MiB.
func BenchmarkBundleLargeLogs(b *testing.B) {
	const per = 520 << 20
	for range b.N {
		d := memFixture()
		d.gen = map[string]func(io.Writer) error{"quay": genLog(per), "redis": genLog(per)}
		d.logErr = nil
		var size int64
		var stored int64
		peak, hwm := peakRSS(func() {
			res, _ := collect(b, d, gather.StreamOptions{LogLimit: 1 << 30}, nil)
			size = res.Size
			for _, f := range res.Manifest.Files {
				if gather.IsLogFact(f.Fact) {
					stored += f.Size
				}
			}
		})
		if stored < 1<<30 {
			b.Fatalf("stored %d bytes of logs, want 1 GiB", stored)
		}
		b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
		b.ReportMetric(float64(stored)/(1<<20), "logs-MiB")
		b.ReportMetric(float64(size)/(1<<20), "archive-MiB")
		b.Logf("peak RSS %.1f MiB (VmHWM reset: %v) for %d MiB of logs, archive %.1f MiB", float64(peak)/(1<<20), hwm, stored>>20, float64(size)/(1<<20))
		if peak > 100<<20 {
			b.Errorf("peak RSS %.1f MiB, target < 100 MiB", float64(peak)/(1<<20))
		}
	}
}
