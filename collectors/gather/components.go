package gather

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/diag"
	"github.com/quayctl/quayctl/internal/redact"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (g *Gatherer) target(ctx context.Context, w io.Writer) error {
	return writeJSON(w, diag.Target{Kind: g.d.Kind(), Name: g.d.Name()})
}

func (g *Gatherer) components(ctx context.Context, w io.Writer) error {
	cs, err := g.d.Components(ctx)
	if err != nil {
		return err
	}
	if cs == nil {
		cs = []collectors.Component{}
	}
	return writeJSON(w, cs)
}

// component reports whether the deployment has the named component, from
// the components fact (gathered once).
func (g *Gatherer) component(ctx context.Context, name string) (collectors.Component, error) {
	cs, err := diag.GetJSON[[]collectors.Component](ctx, g, diag.FactComponents)
	if err != nil {
		return collectors.Component{}, err
	}
	for _, c := range cs {
		if c.Name == name {
			return c, nil
		}
	}
	return collectors.Component{}, fmt.Errorf("no %s component: %w", name, diag.ErrNotApplicable)
}

// logs streams a component's recent log through the redaction.
func (g *Gatherer) logs(name string, previous bool) producer {
	return func(ctx context.Context, w io.Writer) error {
		c, err := g.component(ctx, name)
		if err != nil {
			return err
		}
		if previous && c.Restarts == 0 {
			return fmt.Errorf("%s has not restarted, so it has no previous log: %w", name, diag.ErrNotApplicable)
		}
		rw := redact.Writer(w)
		opts := collectors.LogOptions{Previous: previous, Tail: g.opts.LogTail}
		if !previous {
			opts.Since = g.opts.LogSince
		}
		err = g.d.Logs(ctx, name, opts, rw)
		if cerr := rw.Close(); err == nil {
			err = cerr
		}
		return notApplicable(err)
	}
}

func (g *Gatherer) stats(name string) producer {
	return func(ctx context.Context, w io.Writer) error {
		if _, err := g.component(ctx, name); err != nil {
			return err
		}
		st, err := g.d.Stats(ctx, name)
		if err != nil {
			return notApplicable(err)
		}
		return writeJSON(w, st)
	}
}

// inspect is the component's full description, when the deployment can
// give one (collectors.Inspector).
func (g *Gatherer) inspect(name string) producer {
	return func(ctx context.Context, w io.Writer) error {
		if _, err := g.component(ctx, name); err != nil {
			return err
		}
		in, ok := g.d.(collectors.Inspector)
		if !ok {
			return fmt.Errorf("a %s target cannot describe its components: %w", g.d.Kind(), diag.ErrNotApplicable)
		}
		b, err := in.Inspect(ctx, name)
		if err != nil {
			return notApplicable(err)
		}
		_, err = w.Write(b)
		return err
	}
}

// notApplicable turns "the deployment cannot do this" into ErrNotApplicable
// so checks skip quietly instead of warning.
func notApplicable(err error) error {
	if err != nil && errors.Is(err, collectors.ErrNotSupported) {
		return fmt.Errorf("%v: %w", err, diag.ErrNotApplicable)
	}
	return err
}

// redactError keeps an error's sentinels while showing its text redacted
// (a collector's error may quote a URI with a password).
func redactError(err error) error {
	if err == nil {
		return nil
	}
	s, _ := redact.String(err.Error())
	return &redactedErr{msg: s, err: err}
}

type redactedErr struct {
	msg string
	err error
}

func (e *redactedErr) Error() string { return e.msg }
func (e *redactedErr) Unwrap() error { return e.err }
