package notify

import (
	"fmt"
	"sort"
	"strings"
)

// eventInfo is what delivery needs to know about an event kind: its
// severity (Quay's get_level), a one-line summary, and the data a test
// delivery sends (Quay's get_sample_data).
type eventInfo struct {
	level   string // info, warning, error, primary, success
	summary func(data map[string]any) string
	sample  map[string]any
}

func str(data map[string]any, key string) string {
	if v, ok := data[key]; ok && v != nil {
		return fmt.Sprint(v)
	}
	return ""
}

func buildSummary(what string) func(map[string]any) string {
	return func(d map[string]any) string {
		id := str(d, "build_id")
		if len(id) > 7 {
			id = id[:7]
		}
		return fmt.Sprintf("Build %s for repository %s [%s]", what, str(d, "repository"), id)
	}
}

// events are Quay's externalnotificationevent names. quayctl emits
// repo_push, the mirror and quota events; the build and security-scanner
// ones are accepted (a Quay sharing the database may raise them) but never
// raised here.
var events = map[string]eventInfo{
	RepoPush: {level: "primary",
		summary: func(d map[string]any) string { return "Repository " + str(d, "repository") + " updated" },
		sample:  map[string]any{"updated_tags": []string{"latest", "foo"}, "pruned_image_count": 3}},
	MirrorSyncStarted: {level: "info",
		summary: func(d map[string]any) string { return "Repository Mirror started for " + str(d, "message") },
		sample:  map[string]any{"message": "TEST NOTIFICATION"}},
	MirrorSyncSuccess: {level: "success",
		summary: func(d map[string]any) string { return "Repository Mirror success for " + str(d, "message") },
		sample:  map[string]any{"message": "TEST NOTIFICATION"}},
	MirrorSyncFailed: {level: "error",
		summary: func(d map[string]any) string { return "Repository Mirror failed for " + str(d, "message") },
		sample:  map[string]any{"message": "TEST NOTIFICATION"}},
	RepoImageExpiry: {level: "info",
		summary: func(d map[string]any) string {
			return "Repository " + str(d, "repository") + " image(s) expiring"
		},
		sample: map[string]any{"tags": []string{"latest", "v1"}, "expiring_in": "1 days"}},
	QuotaWarning: {level: "warning",
		summary: func(d map[string]any) string { return "Quota warning for " + str(d, "namespace") },
		sample:  map[string]any{"namespace_size_bytes": 8 << 30, "limit_bytes": 10 << 30, "threshold_bytes": 8 << 30}},
	QuotaError: {level: "error",
		summary: func(d map[string]any) string { return "Quota exceeded for " + str(d, "namespace") },
		sample:  map[string]any{"namespace_size_bytes": 10 << 30, "limit_bytes": 10 << 30, "threshold_bytes": 10 << 30}},
	"vulnerability_found": {level: "warning",
		summary: func(d map[string]any) string {
			return "Vulnerability detected in repository " + str(d, "repository")
		},
		sample: map[string]any{"tags": []string{"latest"}, "image": "some-image-id",
			"vulnerability": map[string]any{"id": "CVE-FAKE-CVE", "description": "A futurist vulnerability", "priority": "Critical"}}},
	"build_queued":    {level: "info", summary: buildSummary("queued"), sample: map[string]any{"build_id": "fake-build-id", "build_name": "some-fake-build", "docker_tags": []string{"latest"}}},
	"build_start":     {level: "info", summary: buildSummary("started"), sample: map[string]any{"build_id": "fake-build-id", "build_name": "some-fake-build", "docker_tags": []string{"latest"}}},
	"build_success":   {level: "success", summary: buildSummary("succeeded"), sample: map[string]any{"build_id": "fake-build-id", "build_name": "some-fake-build", "docker_tags": []string{"latest"}}},
	"build_failure":   {level: "error", summary: buildSummary("failed"), sample: map[string]any{"build_id": "fake-build-id", "build_name": "some-fake-build", "docker_tags": []string{"latest"}, "error_message": "This is a fake error message"}},
	"build_cancelled": {level: "info", summary: buildSummary("cancelled"), sample: map[string]any{"build_id": "fake-build-id", "build_name": "some-fake-build", "docker_tags": []string{"latest"}}},
}

// Events lists the event names a notification may subscribe to.
func Events() []string {
	var out []string
	for name := range events {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// summaryOf is the event's one-line summary, for Slack and e-mail.
func summaryOf(event string, data map[string]any) string {
	if e, ok := events[event]; ok {
		return e.summary(data)
	}
	return strings.ReplaceAll(event, "_", " ") + " for " + str(data, "repository")
}

// messageOf is a few plain lines describing the event (Slack's attachment
// text, the e-mail body).
func messageOf(event string, data map[string]any) string {
	var b strings.Builder
	b.WriteString(summaryOf(event, data))
	keys := make([]string, 0, len(data))
	for k := range data {
		switch k {
		case "repository", "namespace", "name", "homepage", "docker_url":
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := data[k]
		if list, ok := v.([]any); ok {
			parts := make([]string, len(list))
			for i, x := range list {
				parts[i] = fmt.Sprint(x)
			}
			v = strings.Join(parts, ", ")
		} else if list, ok := v.([]string); ok {
			v = strings.Join(list, ", ")
		}
		fmt.Fprintf(&b, "\n%s: %v", k, v)
	}
	if h := str(data, "homepage"); h != "" {
		b.WriteString("\n" + h)
	}
	return b.String()
}

func levelOf(event string) string {
	if e, ok := events[event]; ok {
		return e.level
	}
	return "info"
}
