package upload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/quayctl/quayctl/internal/redact"
)

// ContentType is the Content-Type of a PUT (unless a header sets another)
// and of the file part of a form.
const ContentType = "application/gzip"

// HTTP sends file to rawURL: a PUT of the file as the body, or with
// opts.Form a multipart/form-data POST with the file in that field. It
// retries connection errors, 5xx and 429 answers with exponential backoff,
// reading the file again for every attempt.
func HTTP(ctx context.Context, file, rawURL string, opts Options) (*Result, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, &Error{Msg: fmt.Sprintf("invalid upload URL %q", DisplayURL(rawURL)), Remedy: "pass --to https://HOST/PATH"}
	}
	if u.Scheme == "http" && !opts.Insecure && !IsLoopback(u.Hostname()) {
		return nil, &Error{Msg: "refusing to send the bundle over plain HTTP to " + u.Host, Err: ErrInsecure,
			Remedy: "use https://, or pass --insecure if this network is trusted"}
	}
	if opts.Form != "" && strings.ContainsAny(opts.Form, "\"\r\n") {
		return nil, &Error{Msg: fmt.Sprintf("invalid form field name %q", opts.Form)}
	}
	fi, err := os.Stat(file)
	if err != nil {
		return nil, &Error{Msg: "cannot read the bundle", Err: err, Remedy: "check the FILE argument"}
	}
	if !fi.Mode().IsRegular() {
		return nil, &Error{Msg: file + " is not a regular file", Remedy: "pass the bundle's .tar.gz"}
	}
	client := opts.Client
	if client == nil {
		client = &http.Client{}
	}
	res := &Result{Kind: KindHTTP, Destination: DisplayURL(rawURL), File: file, Bytes: fi.Size(), Method: http.MethodPut}
	if opts.Form != "" {
		res.Method = http.MethodPost
	}
	retries := opts.retries()
	var last error
	for attempt := 1; ; attempt++ {
		res.Attempts = attempt
		sum, status, retry, err := putOnce(ctx, client, u, file, fi.Size(), res.Method, opts)
		if err == nil {
			res.SHA256, res.StatusCode = sum, status
			return res, nil
		}
		last = err
		if !retry || attempt > retries || ctx.Err() != nil {
			break
		}
		if err := sleep(ctx, opts.wait(attempt)); err != nil {
			last = err
			break
		}
	}
	msg := fmt.Sprintf("upload to %s failed", res.Destination)
	if res.Attempts > 1 {
		msg += fmt.Sprintf(" after %d attempts", res.Attempts)
	}
	return nil, &Error{Msg: msg, Err: cleanErr(last, opts.Token, opts.Password), Remedy: httpRemedy(last)}
}

// statusError is a non-2xx answer.
type statusError struct {
	code int
	body string // the start of the body, redacted
}

func (e *statusError) Error() string {
	s := fmt.Sprintf("the server answered %d %s", e.code, http.StatusText(e.code))
	if e.body != "" {
		s += ": " + e.body
	}
	return s
}

// StatusCode returns the HTTP status of a failed upload's last answer, or 0.
func StatusCode(err error) int {
	var se *statusError
	if errors.As(err, &se) {
		return se.code
	}
	return 0
}

func httpRemedy(err error) string {
	switch code := StatusCode(err); {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return "check the credentials: --token-env VAR or --header 'Authorization: …'"
	case code == http.StatusRequestEntityTooLarge:
		return "the server refuses a file this size; ask support for another upload location"
	case code >= 300 && code < 400:
		return "the server redirected; pass the final URL to --to"
	case code >= 500 || code == 0:
		return "the server or the network failed; try again later, or raise --retries"
	}
	return "check the --to URL and the upload's requirements (method, --form field, headers)"
}

// putOnce makes one attempt. It returns the sha256 of the file bytes the
// request carried, the status, and whether a failure is worth a retry.
func putOnce(ctx context.Context, client *http.Client, u *url.URL, file string, size int64, method string, opts Options) (string, int, bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", 0, false, err
	}
	defer f.Close()
	h := sha256.New()
	pr := &progressReader{r: io.TeeReader(io.LimitReader(f, size), h), total: size, fn: opts.Progress}
	var body io.Reader = pr
	length := size
	contentType := ContentType
	if opts.Form != "" {
		// The multipart envelope around the file is small and known in
		// advance, so the body streams from the file with an exact
		// Content-Length (some upload services refuse chunked bodies).
		var head bytes.Buffer
		mw := multipart.NewWriter(&head)
		hdr := make(map[string][]string)
		hdr["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name=%q; filename=%q`, opts.Form, filepath.Base(file))}
		hdr["Content-Type"] = []string{ContentType}
		if _, err := mw.CreatePart(hdr); err != nil {
			return "", 0, false, err
		}
		headLen := head.Len()
		if err := mw.Close(); err != nil {
			return "", 0, false, err
		}
		tail := append([]byte(nil), head.Bytes()[headLen:]...)
		head.Truncate(headLen)
		body = io.MultiReader(&head, pr, bytes.NewReader(tail))
		length = int64(headLen) + size + int64(len(tail))
		contentType = mw.FormDataContentType()
	}
	// No GetBody: the transport must not replay the body behind our back
	// (that would hash and count the bytes twice); retries are ours.
	req, err := http.NewRequestWithContext(ctx, method, u.String(), io.NopCloser(body))
	if err != nil {
		return "", 0, false, err
	}
	req.ContentLength = length
	for k, vs := range opts.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if opts.Form != "" || req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", contentType)
	}
	if opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+opts.Token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", 0, ctx.Err() == nil, err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // reuse the connection
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		text, _ := redact.String(strings.TrimSpace(string(snippet)))
		return "", resp.StatusCode, resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests,
			&statusError{code: resp.StatusCode, body: text}
	}
	if pr.n != size {
		// A server may answer before reading the body; then it did not
		// receive the file, whatever its status says.
		return "", resp.StatusCode, true, fmt.Errorf("the server answered %d after %d of %d bytes", resp.StatusCode, pr.n, size)
	}
	return hexSum(h), resp.StatusCode, false, nil
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// ParseHeader parses "Name: value" as curl's -H does. Its errors never
// show the value, which may be a credential.
func ParseHeader(s string) (string, string, error) {
	k, v, ok := strings.Cut(s, ":")
	k = strings.TrimSpace(k)
	if !ok || k == "" || strings.ContainsAny(k, " \t\r\n") {
		return "", "", errors.New("a --header is not of the form 'Name: value'")
	}
	v = strings.TrimSpace(v)
	if strings.ContainsAny(v, "\r\n") {
		return "", "", fmt.Errorf("header %s has a line break in its value", k)
	}
	return http.CanonicalHeaderKey(k), v, nil
}
