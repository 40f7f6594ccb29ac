package s3

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
)

// Quay's driver names served by this package.
const (
	NameS3      = "S3Storage"
	NameRadosGW = "RadosGWStorage"
	NameRHOCS   = "RHOCSStorage"
)

// Names lists the Quay driver names this package implements.
var Names = []string{NameS3, NameRadosGW, NameRHOCS}

const (
	mib = 1 << 20
	gib = 1 << 30
	// minPartSize is S3's smallest allowed part (all but the last).
	minPartSize = 5 * mib
	// maxPartSize is S3's largest part, and the largest single CopyObject.
	maxPartSize = 5 * gib
	// maxParts is S3's limit on the parts of one multipart upload.
	maxParts = 10000
	// defaultRegion is what S3-compatible servers expect when none is set.
	defaultRegion = "us-east-1"
)

// Config is a parsed DISTRIBUTED_STORAGE_CONFIG entry.
type Config struct {
	Driver       string // NameS3, NameRadosGW or NameRHOCS
	Bucket       string
	Root         string // storage_path without leading or trailing '/'
	Region       string
	Endpoint     string // "" for AWS's own endpoints
	PathStyle    bool
	AccessKey    string
	SecretKey    string
	SessionToken string
	// PartSize is how many bytes a writer collects before sending a part
	// (minimum_chunk_size_mb, at least 5 MiB).
	PartSize int64
	// MaxCopyPart bounds one server-side copy request (maximum_chunk_size_mb
	// or maximum_chunk_size_gb, at most 5 GiB).
	MaxCopyPart int64
}

// params reads Quay's loosely typed YAML values (strings, booleans, numbers).
type params struct {
	driver string
	m      map[string]any
}

func (p params) has(key string) bool {
	v, ok := p.m[key]
	if !ok || v == nil {
		return false
	}
	if s, isStr := v.(string); isStr && strings.TrimSpace(s) == "" {
		return false
	}
	return true
}

func (p params) str(key string) (string, error) {
	if !p.has(key) {
		return "", nil
	}
	switch v := p.m[key].(type) {
	case string:
		return strings.TrimSpace(v), nil
	case int, int64, float64, bool:
		return fmt.Sprint(v), nil
	default:
		return "", fmt.Errorf("%s: parameter %s must be a string, got %T", p.driver, key, v)
	}
}

func (p params) required(key, example string) (string, error) {
	s, err := p.str(key)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", fmt.Errorf("%s: parameter %s is required (for example %s: %s)", p.driver, key, key, example)
	}
	return s, nil
}

func (p params) boolean(key string, def bool) (bool, error) {
	if !p.has(key) {
		return def, nil
	}
	switch v := p.m[key].(type) {
	case bool:
		return v, nil
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return false, fmt.Errorf("%s: parameter %s must be true or false, got %q", p.driver, key, v)
		}
		return b, nil
	default:
		return false, fmt.Errorf("%s: parameter %s must be true or false, got %T (%v)", p.driver, key, v, v)
	}
}

func (p params) number(key string) (float64, bool, error) {
	if !p.has(key) {
		return 0, false, nil
	}
	var f float64
	switch v := p.m[key].(type) {
	case int:
		f = float64(v)
	case int64:
		f = float64(v)
	case float64:
		f = v
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
			return 0, false, fmt.Errorf("%s: parameter %s must be a number, got %q", p.driver, key, v)
		}
	default:
		return 0, false, fmt.Errorf("%s: parameter %s must be a number, got %T (%v)", p.driver, key, v, v)
	}
	if f <= 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false, fmt.Errorf("%s: parameter %s must be a positive number, got %v", p.driver, key, p.m[key])
	}
	return f, true, nil
}

// ParseConfig reads the parameters of driver as Quay spells them:
//
//	S3Storage:      storage_path, s3_bucket, s3_access_key, s3_secret_key,
//	                aws_session_token, s3_region, host, port, endpoint_url
//	RadosGWStorage,
//	RHOCSStorage:   storage_path, bucket_name, hostname, port, is_secure,
//	                access_key, secret_key, region_name
//
// and for all three signature_version, minimum_chunk_size_mb,
// maximum_chunk_size_mb (maximum_chunk_size_gb) and server_side_assembly.
func ParseConfig(driver string, raw map[string]any) (Config, error) {
	p := params{driver: driver, m: raw}
	c := Config{Driver: driver, PartSize: minPartSize, MaxCopyPart: maxPartSize}
	root, err := p.str("storage_path")
	if err != nil {
		return c, err
	}
	if !p.has("storage_path") {
		return c, fmt.Errorf("%s: parameter storage_path is required (the key prefix inside the bucket, for example storage_path: /datastorage/registry)", driver)
	}
	// Quay joins storage_path and the object path and drops a leading '/'.
	c.Root = strings.Trim(root, "/")

	switch driver {
	case NameS3:
		err = c.parseS3(p)
	case NameRadosGW, NameRHOCS:
		err = c.parseRadosGW(p)
	default:
		err = fmt.Errorf("s3: driver %q is not an S3-compatible driver (want one of %s)", driver, strings.Join(Names, ", "))
	}
	if err != nil {
		return c, err
	}
	if c.Region == "" {
		c.Region = defaultRegion
	}

	if sv, err := p.str("signature_version"); err != nil {
		return c, err
	} else if sv != "" && sv != "s3v4" && sv != "v4" {
		return c, fmt.Errorf("%s: signature_version %q is not supported; quayctl signs every request with AWS Signature Version 4 (remove the key or set signature_version: s3v4)", driver, sv)
	}
	if min, ok, err := p.number("minimum_chunk_size_mb"); err != nil {
		return c, err
	} else if ok {
		c.PartSize = max(int64(min*mib), minPartSize)
	}
	if maxMB, ok, err := p.number("maximum_chunk_size_mb"); err != nil {
		return c, err
	} else if ok {
		c.MaxCopyPart = int64(maxMB * mib)
	}
	if maxGB, ok, err := p.number("maximum_chunk_size_gb"); err != nil {
		return c, err
	} else if ok {
		c.MaxCopyPart = int64(maxGB * gib)
	}
	c.MaxCopyPart = min(max(c.MaxCopyPart, minPartSize), maxPartSize)
	if c.PartSize > maxPartSize {
		return c, fmt.Errorf("%s: minimum_chunk_size_mb is larger than S3's largest part (5120 MiB)", driver)
	}
	// server_side_assembly chooses, in Quay, whether chunks are joined by
	// the server; quayctl always streams chunks into one multipart upload,
	// so the value is accepted and has nothing to switch.
	if _, err := p.boolean("server_side_assembly", true); err != nil {
		return c, err
	}
	return c, nil
}

func (c *Config) parseS3(p params) error {
	var err error
	if c.Bucket, err = p.required("s3_bucket", "quay-registry"); err != nil {
		return err
	}
	if c.AccessKey, err = p.str("s3_access_key"); err != nil {
		return err
	}
	if c.SecretKey, err = p.str("s3_secret_key"); err != nil {
		return err
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return fmt.Errorf("%s: set both s3_access_key and s3_secret_key, or neither (to use the AWS credential chain: environment, shared config, instance role)", p.driver)
	}
	if c.SessionToken, err = p.str("aws_session_token"); err != nil {
		return err
	}
	if c.Region, err = p.str("s3_region"); err != nil {
		return err
	}
	endpoint, err := p.str("endpoint_url")
	if err != nil {
		return err
	}
	host, err := p.str("host")
	if err != nil {
		return err
	}
	port, err := p.str("port")
	if err != nil {
		return err
	}
	switch {
	case endpoint != "":
		c.Endpoint, err = checkEndpoint(p.driver, "endpoint_url", endpoint)
	case host != "":
		if strings.HasPrefix(host, "http://") || strings.HasPrefix(host, "https://") {
			return fmt.Errorf("%s: host %q must be a host name without http:// or https:// (use endpoint_url for a full URL)", p.driver, host)
		}
		c.Endpoint, err = checkEndpoint(p.driver, "host", buildEndpoint(host, port, true))
	}
	// A custom endpoint (MinIO, NooBaa, Ceph…) rarely has per-bucket DNS
	// names, so address buckets in the path there.
	c.PathStyle = c.Endpoint != ""
	return err
}

func (c *Config) parseRadosGW(p params) error {
	var err error
	if c.Bucket, err = p.required("bucket_name", "quay-registry"); err != nil {
		return err
	}
	if c.AccessKey, err = p.required("access_key", "<access key>"); err != nil {
		return err
	}
	if c.SecretKey, err = p.required("secret_key", "<secret key>"); err != nil {
		return err
	}
	host, err := p.required("hostname", "s3.openshift-storage.svc")
	if err != nil {
		return err
	}
	if !p.has("is_secure") {
		return fmt.Errorf("%s: parameter is_secure is required (true for https, false for http)", p.driver)
	}
	secure, err := p.boolean("is_secure", true)
	if err != nil {
		return err
	}
	port, err := p.str("port")
	if err != nil {
		return err
	}
	if c.Region, err = p.str("region_name"); err != nil {
		return err
	}
	c.Endpoint, err = checkEndpoint(p.driver, "hostname", buildEndpoint(host, port, secure))
	c.PathStyle = true
	return err
}

// buildEndpoint turns Quay's hostname/port/is_secure into a URL the way
// Quay does: a scheme from is_secure unless the host has one, and the port
// unless the host already ends with one.
func buildEndpoint(host, port string, secure bool) string {
	if !strings.HasPrefix(host, "http://") && !strings.HasPrefix(host, "https://") {
		if secure {
			host = "https://" + host
		} else {
			host = "http://" + host
		}
	}
	if port != "" {
		last := host[strings.LastIndex(host, ":")+1:]
		if _, err := strconv.Atoi(strings.Trim(last, " /")); err != nil {
			host = strings.TrimRight(host, "/") + ":" + port
		}
	}
	return host
}

func checkEndpoint(driver, key, raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s: %s gives endpoint %q, which is not an http:// or https:// URL with a host", driver, key, raw)
	}
	return strings.TrimRight(raw, "/"), nil
}
