// Package drivers builds a storage.Driver from a Quay storage configuration
// entry, for example `default: [LocalStorage, {storage_path: /datastorage/registry}]`.
package drivers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/quayctl/quayctl/registry/storage"
	"github.com/quayctl/quayctl/registry/storage/local"
	"github.com/quayctl/quayctl/registry/storage/s3"
)

// factory builds one driver from its parameters.
type factory func(ctx context.Context, params map[string]any) (storage.Driver, error)

// supported maps the Quay driver names quayctl implements to their factories.
var supported = map[string]factory{
	local.DriverName: func(_ context.Context, params map[string]any) (storage.Driver, error) {
		d, err := local.New(params)
		if err != nil {
			return nil, err // never a typed nil inside the interface
		}
		return d, nil
	},
	s3.NameS3:      newS3(s3.NameS3),
	s3.NameRadosGW: newS3(s3.NameRadosGW),
	s3.NameRHOCS:   newS3(s3.NameRHOCS),
}

// newS3 builds the S3-compatible driver under one of its Quay names.
func newS3(name string) factory {
	return func(ctx context.Context, params map[string]any) (storage.Driver, error) {
		d, err := s3.New(ctx, name, params)
		if err != nil {
			return nil, err
		}
		return d, nil
	}
}

// quayOnly lists the other driver names Quay accepts in
// DISTRIBUTED_STORAGE_CONFIG; quayctl recognises them so a config written for
// Quay gets "not supported yet" instead of "unknown".
var quayOnly = []string{
	"GoogleCloudStorage",
	"AzureStorage",
	"SwiftStorage",
	"CloudFrontedS3Storage",
	"STSS3Storage",
	"IBMCloudStorage",
	"CloudFlareStorage",
	"AkamaiS3Storage",
	"MultiCDNStorage",
}

// NotSupportedError is returned for a Quay driver quayctl does not implement.
type NotSupportedError struct {
	Driver string
}

func (e NotSupportedError) Error() string {
	return fmt.Sprintf("storage driver %s is a Quay driver that quayctl does not support yet; use %s",
		e.Driver, strings.Join(SupportedNames(), " or "))
}

// UnknownDriverError is returned for a name Quay does not know either,
// usually a typo; Known lists every valid name.
type UnknownDriverError struct {
	Driver string
	Known  []string
}

func (e UnknownDriverError) Error() string {
	msg := fmt.Sprintf("unknown storage driver %q", e.Driver)
	for _, k := range e.Known {
		if strings.EqualFold(k, e.Driver) {
			msg += fmt.Sprintf(" (did you mean %s? driver names are case-sensitive)", k)
			break
		}
	}
	return msg + "; known drivers: " + strings.Join(e.Known, ", ")
}

// Known reports whether name is any Quay storage driver name.
func Known(name string) bool {
	return Supported(name) || slices.Contains(quayOnly, name)
}

// Supported reports whether quayctl implements the driver name.
func Supported(name string) bool {
	_, ok := supported[name]
	return ok
}

// SupportedNames returns the driver names quayctl implements, sorted.
func SupportedNames() []string {
	names := make([]string, 0, len(supported))
	for n := range supported {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// KnownNames returns every Quay driver name, supported ones first.
func KnownNames() []string {
	return append(SupportedNames(), quayOnly...)
}

// New builds the driver called name (a Quay driver name) from its params.
func New(ctx context.Context, name string, params map[string]any) (storage.Driver, error) {
	if f, ok := supported[name]; ok {
		return f(ctx, params)
	}
	if Known(name) {
		return nil, NotSupportedError{Driver: name}
	}
	return nil, UnknownDriverError{Driver: name, Known: KnownNames()}
}
