package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
)

// Probe steps, in the order they run.
const (
	ProbeWrite   = "write"
	ProbeStat    = "stat"
	ProbeRead    = "read"
	ProbeCompare = "compare"
	ProbeDelete  = "delete"
)

// ProbeContent is what the probe writes, as in Quay's storage health check.
const ProbeContent = "testing 123"

// ProbePathPrefix starts every probe object's name. Quay's own check writes
// a file named "_verify"; a flat "_verify-<random>" name cannot collide with
// it (a "_verify/" directory could not be created over Quay's file on shared
// local storage), nor with a concurrent probe from another replica.
const ProbePathPrefix = "_verify-"

// probeCleanupTimeout bounds the best-effort delete after a failed step, which
// runs even when the caller's context has ended so no probe object lingers.
const probeCleanupTimeout = 10 * time.Second

// ProbeStep is one step that ran.
type ProbeStep struct {
	Name     string
	Duration time.Duration
	Err      error
}

// ProbeResult reports a storage probe. Steps holds the steps that ran, in
// order; after a failure the remaining checks are skipped but the object is
// still deleted, so Steps may end with a delete after the failed step.
type ProbeResult struct {
	Driver string
	Path   string
	OK     bool
	Steps  []ProbeStep
	// Err is the first failure as a *ProbeError, nil when OK.
	Err   error
	Total time.Duration
}

// FailedStep names the step of the first failure, "" when OK.
func (r ProbeResult) FailedStep() string {
	if pe, ok := r.Err.(*ProbeError); ok {
		return pe.Step
	}
	return ""
}

// ProbeError says which probe step failed on which driver.
type ProbeError struct {
	Driver string
	Step   string
	Path   string
	Err    error
}

func (e *ProbeError) Error() string {
	return fmt.Sprintf("storage probe on %s failed at %s of %s: %v", e.Driver, e.Step, e.Path, e.Err)
}

func (e *ProbeError) Unwrap() error { return e.Err }

// Probe writes a small object, stats it, reads it back, compares and deletes
// it, timing each step. The server runs it at start and health checks and
// diagnose reuse it, so a storage problem shows up with the step that broke.
func Probe(ctx context.Context, d Driver) ProbeResult {
	var b [8]byte
	_, _ = rand.Read(b[:])
	res := ProbeResult{Driver: d.Name(), Path: ProbePathPrefix + hex.EncodeToString(b[:])}
	start := time.Now()

	step := func(name string, fn func() error) bool {
		t := time.Now()
		err := fn()
		res.Steps = append(res.Steps, ProbeStep{Name: name, Duration: time.Since(t), Err: err})
		if err != nil && res.Err == nil {
			res.Err = &ProbeError{Driver: res.Driver, Step: name, Path: res.Path, Err: err}
		}
		return err == nil
	}

	written := false
	if step(ProbeWrite, func() error {
		var err error
		written, err = probeWrite(ctx, d, res.Path)
		return err
	}) {
		var got []byte
		_ = step(ProbeStat, func() error {
			fi, err := d.Stat(ctx, res.Path)
			if err != nil {
				return err
			}
			if fi.IsDir || fi.Size != int64(len(ProbeContent)) {
				return fmt.Errorf("stat reports size %d (directory: %v), want a %d-byte object",
					fi.Size, fi.IsDir, len(ProbeContent))
			}
			return nil
		}) && step(ProbeRead, func() error {
			r, err := d.Reader(ctx, res.Path, 0)
			if err != nil {
				return err
			}
			defer r.Close()
			// Read one byte more than expected so an over-long object shows.
			got, err = io.ReadAll(io.LimitReader(r, int64(len(ProbeContent))+1))
			return err
		}) && step(ProbeCompare, func() error {
			if !bytes.Equal(got, []byte(ProbeContent)) {
				return fmt.Errorf("read back %q, wrote %q", got, ProbeContent)
			}
			return nil
		})
	}

	if res.Err == nil {
		step(ProbeDelete, func() error { return d.Delete(ctx, res.Path) })
	} else if written {
		// Tidy up after a failed check, recorded as a step so a failing
		// delete is visible too, but never masking the first error.
		step(ProbeDelete, func() error {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeCleanupTimeout)
			defer cancel()
			if err := d.Delete(cctx, res.Path); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			return nil
		})
	}
	res.OK = res.Err == nil
	res.Total = time.Since(start)
	return res
}

// probeWrite writes and commits the probe object. written reports whether
// something may exist at path and needs deleting.
func probeWrite(ctx context.Context, d Driver, path string) (written bool, err error) {
	w, err := d.Writer(ctx, path, false)
	if err != nil {
		return false, err
	}
	if _, err := io.WriteString(w, ProbeContent); err != nil {
		_ = w.Cancel(ctx)
		return false, err
	}
	if err := w.Commit(ctx); err != nil {
		_ = w.Cancel(ctx)
		// A commit may fail after the object became visible (a lost reply
		// from an object store), so try to delete it anyway.
		return true, err
	}
	if err := w.Close(); err != nil {
		return true, err
	}
	return true, nil
}
