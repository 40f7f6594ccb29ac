package autoprune

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/quayctl/quayctl/registry/store"
)

// Store is what pruning needs from the database.
type Store interface {
	store.AutoPruneStore
}

// Options tune the worker; zero values take Quay's defaults.
type Options struct {
	Logger *slog.Logger
	// BatchSize is how many namespace tasks one pass takes at most
	// (AUTO_PRUNING_BATCH_SIZE, 10).
	BatchSize int
	// MinInterval is how long a namespace rests after a run before it is
	// due again (AUTOPRUNE_TASK_RUN_MINIMUM_INTERVAL_MINUTES, 60 minutes).
	MinInterval time.Duration
	// RepositoryPageSize is how many repositories are read at a time (100).
	RepositoryPageSize int
	// RegistryPolicy is DEFAULT_NAMESPACE_AUTOPRUNE_POLICY: applied to
	// every active namespace once per RegistryPeriod
	// (AUTO_PRUNING_DEFAULT_POLICY_POLL_PERIOD, a day) by one replica at a
	// time, whose hold lapses after RegistryTimeout
	// (AUTOPRUNE_DEFAULT_POLICY_TIMEOUT, an hour); namespaces are read
	// NamespacePageSize at a time
	// (AUTO_PRUNING_DEFAULT_POLICY_FETCH_NAMESPACES_LIMIT, 50). nil: none.
	RegistryPolicy    *Policy
	RegistryPeriod    time.Duration
	RegistryTimeout   time.Duration
	NamespacePageSize int
	// Now is the clock creation_date policies compare with; tests move it.
	Now func() time.Time
}

// Pruner runs namespace policies.
type Pruner struct {
	st   Store
	opts Options
	log  *slog.Logger
}

// New returns a pruner over st.
func New(st Store, o Options) *Pruner {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 10
	}
	if o.MinInterval <= 0 {
		o.MinInterval = time.Hour
	}
	if o.RepositoryPageSize <= 0 {
		o.RepositoryPageSize = 100
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RegistryPeriod <= 0 {
		o.RegistryPeriod = 24 * time.Hour
	}
	if o.RegistryTimeout <= 0 {
		o.RegistryTimeout = time.Hour
	}
	if o.NamespacePageSize <= 0 {
		o.NamespacePageSize = 50
	}
	return &Pruner{st: st, opts: o, log: o.Logger.With("worker", "autopruneworker")}
}

// Result counts what a pass did.
type Result struct {
	Namespaces int // tasks run
	Pruned     int // tags ended
	Failed     int // tasks that ended in failure
}

// RunOnce claims and runs up to BatchSize due namespace tasks. A failing
// namespace is recorded in its task status and does not stop the others.
func (p *Pruner) RunOnce(ctx context.Context) (Result, error) {
	var res Result
	for range p.opts.BatchSize {
		task, err := p.st.ClaimAutoPruneTask(ctx, p.opts.MinInterval)
		if err != nil {
			return res, err
		}
		if task == nil {
			return res, nil
		}
		res.Namespaces++
		n, err := p.pruneNamespace(ctx, task)
		res.Pruned += n
		status := store.AutoPruneSuccess
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			res.Failed++
			status = "failure: " + err.Error()
			p.log.WarnContext(ctx, "auto-prune of a namespace failed", "namespace", task.Namespace, "pruned", n, "err", err)
		} else {
			p.log.InfoContext(ctx, "auto-pruned namespace", "namespace", task.Namespace, "pruned", n, "policies", len(task.Policies))
		}
		if err := p.st.FinishAutoPruneTask(context.WithoutCancel(ctx), task.ID, status); err != nil {
			return res, err
		}
	}
	return res, nil
}

// PruneRegistry runs the registry-wide policy over every active namespace
// if the pass is due and no other replica holds it; ran is false when it
// did not run. As in Quay it stands in for a namespace policy: the
// repositories' own policies are left to their namespace's task. A
// namespace that fails is counted and logged, and the pass goes on.
func (p *Pruner) PruneRegistry(ctx context.Context) (res Result, ran bool, err error) {
	if p.opts.RegistryPolicy == nil {
		return res, false, nil
	}
	claim, err := p.st.ClaimRegistryAutoPrune(ctx, p.opts.RegistryTimeout)
	if err != nil || claim == "" {
		return res, false, err
	}
	var after int64
	for {
		page, err := p.st.ActiveNamespaces(ctx, after, p.opts.NamespacePageSize)
		if err != nil {
			return res, true, err
		}
		for _, ns := range page {
			after = ns.ID
			res.Namespaces++
			n, err := p.pruneNamespaceRepositories(ctx, ns.ID, []*Policy{p.opts.RegistryPolicy})
			res.Pruned += n
			if err != nil {
				if ctx.Err() != nil {
					return res, true, ctx.Err()
				}
				res.Failed++
				p.log.WarnContext(ctx, "registry-wide auto-prune of a namespace failed", "namespace", ns.Username, "pruned", n, "err", err)
			}
		}
		if len(page) < p.opts.NamespacePageSize {
			break
		}
	}
	p.log.InfoContext(ctx, "registry-wide auto-prune done", "namespaces", res.Namespaces, "pruned", res.Pruned, "failed", res.Failed)
	if err := p.st.FinishRegistryAutoPrune(context.WithoutCancel(ctx), claim, p.opts.RegistryPeriod); err != nil {
		return res, true, err
	}
	return res, true, nil
}

// Worker runs RunOnce every interval until ctx ends.
func (p *Pruner) Worker(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 30 * time.Second
	}
	p.log.Info("auto-prune worker started", "interval", interval, "batch", p.opts.BatchSize, "min_interval", p.opts.MinInterval)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := p.RunOnce(ctx); err != nil && ctx.Err() == nil {
			p.log.Error("auto-prune pass failed", "err", err)
		}
		if _, _, err := p.PruneRegistry(ctx); err != nil && ctx.Err() == nil {
			p.log.Error("registry-wide auto-prune failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *Pruner) pruneNamespace(ctx context.Context, task *store.AutoPruneTask) (int, error) {
	var policies []*Policy
	var errs []error
	for _, row := range task.Policies {
		pol, err := Load(row.Policy)
		if err != nil {
			errs = append(errs, fmt.Errorf("policy %s: %w", row.UUID, err))
			continue
		}
		policies = append(policies, pol)
	}
	// creation_date first, as Quay: age limits are cheap and shrink what
	// the count has to look at.
	slices.SortStableFunc(policies, func(a, b *Policy) int {
		return strings.Compare(a.Method, b.Method)
	})
	pruned, err := p.pruneNamespaceRepositories(ctx, task.NamespaceID, policies)
	if err != nil {
		if ctx.Err() != nil {
			return pruned, ctx.Err()
		}
		errs = append(errs, err)
	}
	// Then each repository's own policies, creation_date first again.
	repoPolicies := slices.Clone(task.RepositoryPolicies)
	slices.SortStableFunc(repoPolicies, func(a, b store.AutoPrunePolicy) int {
		if a.RepositoryID != b.RepositoryID {
			return cmp.Compare(a.RepositoryID, b.RepositoryID)
		}
		return strings.Compare(methodOf(a.Policy), methodOf(b.Policy))
	})
	for _, row := range repoPolicies {
		pol, err := Load(row.Policy)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s/%s: policy %s: %w", task.Namespace, row.Repository, row.UUID, err))
			continue
		}
		repo := &store.Repository{ID: row.RepositoryID, NamespaceID: task.NamespaceID, Namespace: task.Namespace, Name: row.Repository}
		if err := p.apply(ctx, repo, pol, &pruned, &errs); err != nil {
			return pruned, err
		}
	}
	return pruned, errors.Join(errs...)
}

// apply runs one policy on one repository, adding what it pruned to
// *pruned and a failure to *errs; it returns an error only when ctx ended
// and the pass must stop.
func (p *Pruner) apply(ctx context.Context, repo *store.Repository, pol *Policy, pruned *int, errs *[]error) error {
	n, err := p.pruneRepository(ctx, repo, pol)
	*pruned += n
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		*errs = append(*errs, fmt.Errorf("%s: %w", repo.FullName(), err))
	}
	return nil
}

// pruneNamespaceRepositories applies policies to every repository of a
// namespace, page by page; a failing repository does not stop the others.
func (p *Pruner) pruneNamespaceRepositories(ctx context.Context, namespaceID int64, policies []*Policy) (int, error) {
	pruned := 0
	var errs []error
	var after int64
	for len(policies) > 0 {
		repos, err := p.st.NamespaceRepositories(ctx, namespaceID, after, p.opts.RepositoryPageSize)
		if err != nil {
			return pruned, errors.Join(append(errs, err)...)
		}
		for i := range repos {
			repo := &repos[i]
			after = repo.ID
			for _, pol := range policies {
				if err := p.apply(ctx, repo, pol, &pruned, &errs); err != nil {
					return pruned, err
				}
			}
		}
		if len(repos) < p.opts.RepositoryPageSize {
			break
		}
	}
	return pruned, errors.Join(errs...)
}

// methodOf is a stored policy's method, for ordering ("" when unreadable).
func methodOf(stored string) string {
	if p, err := Load(stored); err == nil {
		return p.Method
	}
	return ""
}

// pruneRepository applies one policy to one repository: the tags it
// covers, oldest first, beyond the count or older than the age.
func (p *Pruner) pruneRepository(ctx context.Context, repo *store.Repository, pol *Policy) (int, error) {
	tags, err := p.st.PrunableTags(ctx, repo.ID) // newest first
	if err != nil {
		return 0, err
	}
	var covered []store.Tag
	for _, t := range tags {
		if pol.Applies(t.Name) && !isSignatureTag(t.Name) {
			covered = append(covered, t)
		}
	}
	var victims []store.Tag
	switch pol.Method {
	case MethodNumberOfTags:
		if len(covered) > pol.Count {
			victims = covered[pol.Count:]
		}
	case MethodCreationDate:
		cutoff := p.opts.Now().Add(-pol.Age).UnixMilli()
		for _, t := range covered {
			if t.LifetimeStartMs < cutoff {
				victims = append(victims, t)
			}
		}
	}
	slices.Reverse(victims) // oldest first
	n := 0
	for i := range victims {
		t := &victims[i]
		ok, err := p.st.PruneTag(ctx, t, store.LogEntry{Kind: "autoprune_tag_delete", AccountID: repo.NamespaceID,
			RepositoryID: &repo.ID, Metadata: map[string]any{
				"namespace": repo.Namespace, "repo": repo.Name, "tag": t.Name, "manifest_digest": t.ManifestDigest,
				"method": pol.Method, "value": pol.value(), "tag_pattern": nilIfEmpty(pol.TagPattern),
				"tag_pattern_matches": pol.TagPatternMatches,
			}})
		if err != nil {
			return n, err
		}
		if ok {
			n++
			p.log.DebugContext(ctx, "auto-pruned tag", "repository", repo.FullName(), "tag", t.Name, "method", pol.Method, "value", pol.value())
		}
	}
	return n, nil
}

// isSignatureTag reports cosign's tags (sha256-<hex>.sig/.att/.sbom),
// which Quay's auto-prune leaves alone: they belong to another tag's image.
func isSignatureTag(name string) bool {
	if !strings.HasPrefix(name, "sha256-") {
		return false
	}
	return strings.HasSuffix(name, ".sig") || strings.HasSuffix(name, ".att") || strings.HasSuffix(name, ".sbom")
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
