package redact

import (
	"regexp"
	"strings"
)

// lineState carries what spans lines: an open PEM private key block.
type lineState struct {
	inPEM   bool
	pemBody bool // the open block had a body (not just an earlier Marker)
}

var (
	pemBegin = regexp.MustCompile(`-----BEGIN ([A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----`)
	pemEnd   = regexp.MustCompile(`-----END ([A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----`)

	// Authorization: Bearer x / 'Authorization': 'Basic x' / authorization=x
	authHeader = regexp.MustCompile(`(?i)\b((?:proxy-)?authorization)(\\?["']?\s*[:=]\s*\\?["']?)(?:(bearer|basic|digest|negotiate|token|ntlm|aws4-hmac-sha256)\s+)?([^\s"'\\,;]+)`)
	// Cookie: a=b; c=d (to the end of the quoted string or line)
	cookieHeader = regexp.MustCompile(`(?i)\b((?:set-)?cookie)(\\?["']?\s*[:=]\s*\\?["']?)([^"'\\\r\n]+)`)
	bearer       = regexp.MustCompile(`(?i)\b(bearer)(\s+)([A-Za-z0-9\-._~+/]{16,}=*)`)
	jwt          = regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)
	// scheme://user:password@ — the password runs to the last @ of the
	// token, so an unencoded @ or / in it is still covered.
	uriPassword = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.\-]*://)([^:/?#@\s"'<>\\]*):([^\s"'<>\\]*)@`)
	// scheme://TOKEN@ (a token as the user name: git over https).
	uriToken = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.\-]*://)([A-Za-z0-9_\-]{20,})@`)
	awsKeyID = regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`)
	// --password VALUE (the = form is a key=value pair).
	cliFlag = regexp.MustCompile(`(?i)(?:^|\s)(--?[a-z0-9-]*(?:password|passwd|passphrase|token|secret|api-key|access-key|secret-key)[a-z0-9-]*)([ \t]+)([^\s-]\S*)`)
)

// hints: a line that contains none of these (lower-cased) cannot match a
// built-in rule, and is passed through untouched.
var hints = []string{"pass", "pwd", "secret", "token", "key", "psk", "cred", "dsn", "auth", "bearer", "cookie", "://", "akia", "asia", "eyj", "-----", "sig", "uri", "os_options"}

// textRuleNames whose keys are handled by their own rule in free text.
var ownRule = map[string]bool{"AUTHORIZATION": true, "PROXY_AUTHORIZATION": true, "COOKIE": true, "SET_COOKIE": true}

// line redacts one line (without its newline). keep is false when the line
// is inside a PEM private key block and is dropped.
func (r *Redactor) line(st *lineState, s string, sum Summary) (string, bool) {
	var prefix string
	if st.inPEM {
		loc := pemEnd.FindStringIndex(s)
		if loc == nil {
			if t := strings.TrimSpace(s); t != "" && t != Marker {
				st.pemBody = true
			}
			return "", false
		}
		st.inPEM = false
		if st.pemBody || strings.TrimSpace(s[:loc[0]]) != "" {
			sum.inc(RulePEM)
		}
		st.pemBody = false
		prefix = Marker + "\n" + s[loc[0]:loc[1]]
		s = s[loc[1]:]
	}
	s = r.pem(st, s, sum)
	custom := len(r.textRules) > 0 || len(r.keyRules) > 0
	if !custom && !hasHint(s) {
		return prefix + s, true
	}
	// Cheap literal checks keep each regular expression off the lines it
	// cannot match (most lines of a log).
	low := strings.ToLower(s)
	has := func(subs ...string) bool { return hasAny(low, subs) }
	if has("authorization") {
		s = r.authorization(s, sum)
	}
	if has("cookie") {
		s = replaceFunc(cookieHeader, s, func(m []string) (string, bool) {
			if strings.TrimSpace(m[3]) == Marker {
				return "", false
			}
			sum.inc(RuleCookie)
			return m[1] + m[2] + Marker, true
		})
	}
	if has("bearer") {
		s = replaceFunc(bearer, s, func(m []string) (string, bool) {
			if !strings.ContainsAny(m[3], "0123456789") {
				return "", false // "bearer authentication_required" in prose
			}
			sum.inc(RuleBearer)
			return m[1] + m[2] + Marker, true
		})
	}
	if strings.Contains(s, "eyJ") {
		s = replaceFunc(jwt, s, func(m []string) (string, bool) {
			sum.inc(RuleJWT)
			return Marker, true
		})
	}
	if strings.Contains(s, "://") {
		s = r.uris(s, sum)
	}
	if strings.Contains(s, "AKIA") || strings.Contains(s, "ASIA") {
		s = replaceFunc(awsKeyID, s, func(m []string) (string, bool) {
			sum.inc(RuleAWSKeyID)
			return Marker, true
		})
	}
	if (strings.HasPrefix(s, "-") || strings.Contains(s, " -") || strings.Contains(s, "\t-")) && has("pass", "token", "secret", "key") {
		s = r.cliFlags(s, sum)
	}
	if custom || strings.ContainsAny(s, ":=") && hasAny(low, kvHints) {
		s = r.keyValues(s, sum)
	}
	for _, tr := range r.textRules {
		s = replaceCustom(tr, s, sum)
	}
	return prefix + s, true
}

// kvHints: a secret name contains one of these (lower-cased).
var kvHints = []string{"pass", "pwd", "secret", "token", "key", "psk", "cred", "dsn", "sig", "uri", "auth", "cookie", "os_options"}

func (r *Redactor) authorization(s string, sum Summary) string {
	return replaceFunc(authHeader, s, func(m []string) (string, bool) {
		if m[4] == Marker || strings.HasPrefix(m[4], "<redacted") {
			return "", false
		}
		out := m[1] + m[2]
		if m[3] != "" {
			out += m[3] + " "
		}
		sum.inc(RuleAuthHeader)
		return out + Marker, true
	})
}

func (r *Redactor) uris(s string, sum Summary) string {
	var b strings.Builder
	pos := 0
	for from := 0; ; {
		k := strings.Index(s[from:], "://")
		if k < 0 {
			break
		}
		k += from
		from = k + 3
		// The scheme before "://": letters, digits, + . - starting with a letter.
		st := k
		for st > 0 && isSchemeChar(s[st-1]) {
			st--
		}
		for st < k && !isLetter(s[st]) {
			st++
		}
		if st == k || st < pos {
			continue
		}
		rest := s[st:]
		repl, n, rule := "", 0, ""
		if m := uriPassword.FindStringSubmatchIndex(rest); m != nil {
			pw := rest[m[6]:m[7]]
			i := strings.IndexByte(pw, '/')
			// host:PORT/path@sha256:… is an image reference, not a login.
			if pw != "" && pw != Marker && !(i > 0 && allDigits(pw[:i])) {
				repl, n, rule = rest[m[2]:m[3]]+rest[m[4]:m[5]]+":"+Marker+"@", m[1], RuleURIPassword
			}
		} else if m := uriToken.FindStringSubmatchIndex(rest); m != nil {
			tok := rest[m[4]:m[5]]
			if strings.ContainsAny(tok, "0123456789") && hasLetter(tok) {
				repl, n, rule = rest[m[2]:m[3]]+Marker+"@", m[1], RuleURIToken
			}
		}
		if rule == "" {
			continue
		}
		sum.inc(rule)
		b.WriteString(s[pos:st])
		b.WriteString(repl)
		pos = st + n
		from = pos
	}
	if pos == 0 {
		return s
	}
	b.WriteString(s[pos:])
	return b.String()
}

func isSchemeChar(c byte) bool {
	return isLetter(c) || c >= '0' && c <= '9' || c == '+' || c == '.' || c == '-'
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func (r *Redactor) cliFlags(s string, sum Summary) string {
	return replaceFunc(cliFlag, s, func(m []string) (string, bool) {
		flag := strings.ToLower(m[1])
		for _, suf := range []string{"-stdin", "-file", "-env", "-path", "-expiration", "-ttl"} {
			if strings.HasSuffix(flag, suf) {
				return "", false
			}
		}
		if m[3] == Marker {
			return "", false
		}
		lead := m[0][:len(m[0])-len(m[1])-len(m[2])-len(m[3])]
		sum.inc(RuleCLIFlag)
		return lead + m[1] + m[2] + Marker, true
	})
}

// pem replaces PEM private key blocks; an unterminated block opens the
// multi-line state.
func (r *Redactor) pem(st *lineState, s string, sum Summary) string {
	var b strings.Builder
	for {
		loc := pemBegin.FindStringSubmatchIndex(s)
		if loc == nil {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:loc[1]])
		rest := s[loc[1]:]
		end := pemEnd.FindStringIndex(rest)
		if end == nil {
			// The body follows on the next lines: they are dropped, and
			// Marker goes before the END line (counted there).
			st.inPEM = true
			st.pemBody = strings.TrimSpace(rest) != ""
			return b.String()
		}
		if body := strings.TrimSpace(rest[:end[0]]); body != "" && body != Marker {
			sum.inc(RulePEM)
		}
		b.WriteString(Marker)
		b.WriteString(rest[end[0]:end[1]])
		s = rest[end[1]:]
	}
}

// keyValues redacts the values of name=value, name: value, "name": "value"
// and \"name\": \"value\" pairs whose name is secret. Only secret pairs
// consume their value, so a pair nested in another value
// (url=https://h/?token=x) is still found.
func (r *Redactor) keyValues(s string, sum Summary) string {
	var b strings.Builder
	pos := 0 // s[:pos] is written (or unchanged)
	changed := false
	for i := 0; i < len(s); i++ {
		if s[i] != ':' && s[i] != '=' {
			continue
		}
		keyStart, keyEnd, matchStart := keyBefore(s, i)
		if keyStart < 0 || keyStart < pos {
			continue
		}
		key := s[keyStart:keyEnd]
		if len(r.keyRules) == 0 && !hasAny(strings.ToLower(key), kvHints) {
			continue
		}
		n := NormalizeKey(key)
		class := ""
		if !ownRule[n] {
			class = r.keyClass(key)
		}
		if class == "" {
			continue
		}
		sepEnd := i + 1
		for sepEnd < len(s) && (s[sepEnd] == ' ' || s[sepEnd] == '\t') {
			sepEnd++
		}
		yamlLine := s[i] == ':' && lineStart(s[:matchStart])
		_, vEnd, inner0, inner1 := parseValue(s, sepEnd, yamlLine)
		val := s[inner0:inner1]
		if skipValue(val) || uriKeys[n] && strings.Contains(val, "://") {
			// A URI's credentials were handled by the URI rules; its host
			// and database stay readable.
			i = max(i, vEnd-1)
			continue
		}
		if class == RuleQuayKey || class == RuleKeyName {
			class = RuleKeyValue
		}
		sum.inc(class)
		changed = true
		b.WriteString(s[pos:inner0])
		b.WriteString(Marker)
		b.WriteString(s[inner1:vEnd])
		pos = vEnd
		i = max(i, vEnd-1)
	}
	if !changed {
		return s
	}
	b.WriteString(s[pos:])
	return b.String()
}

// keyBefore finds the name of a pair whose separator is s[sep]: name
// characters [A-Za-z0-9_.-] starting with a letter or _, then optional
// quotes (also \" in escaped JSON) and blanks before the separator.
// matchStart includes an opening quote. keyStart is -1 when there is none.
func keyBefore(s string, sep int) (keyStart, keyEnd, matchStart int) {
	j := sep
	for j > 0 && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	if j > 0 && (s[j-1] == '"' || s[j-1] == '\'') {
		j--
		if j > 0 && s[j-1] == '\\' {
			j--
		}
	}
	keyEnd = j
	for j > 0 && isKeyChar(s[j-1]) {
		j--
	}
	// The name starts at its first letter or underscore (--password=x).
	for j < keyEnd && !(s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z') {
		j++
	}
	if j == keyEnd {
		return -1, -1, -1
	}
	matchStart = j
	if matchStart > 0 && (s[matchStart-1] == '"' || s[matchStart-1] == '\'') {
		matchStart--
		if matchStart > 0 && s[matchStart-1] == '\\' {
			matchStart--
		}
	}
	return j, keyEnd, matchStart
}

func isKeyChar(c byte) bool {
	return c == '_' || c == '.' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func hasAny(s string, subs []string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// parseValue reads the value starting at i: \"escaped\", "quoted",
// 'quoted' or bare. It returns the value's span and the span inside quotes.
// A bare value of a "name: value" pair that starts the line (YAML) runs to
// the end of the line: "password: two words".
func parseValue(s string, i int, wholeLine bool) (start, end, in0, in1 int) {
	switch {
	case strings.HasPrefix(s[i:], `\"`):
		j := i + 2
		for j < len(s) {
			if strings.HasPrefix(s[j:], `\"`) {
				return i, j + 2, i + 2, j
			}
			j++
		}
		return i, len(s), i + 2, len(s)
	case i < len(s) && (s[i] == '"' || s[i] == '\''):
		q := s[i]
		j := i + 1
		for j < len(s) {
			if s[j] == '\\' && q == '"' {
				j += 2
				continue
			}
			if s[j] == q {
				return i, j + 1, i + 1, j
			}
			j++
		}
		return i, len(s), i + 1, len(s)
	}
	if wholeLine {
		j := len(s)
		for j > i && (s[j-1] == '\r' || s[j-1] == ' ' || s[j-1] == '\t') {
			j--
		}
		return i, j, i, j
	}
	j := i
	for j < len(s) && !strings.ContainsRune(" \t\r\n,;&\"'<>}])\\", rune(s[j])) {
		j++
	}
	return i, j, i, j
}

// lineStart reports whether before holds only indentation, a YAML list
// dash or a shell "export".
func lineStart(before string) bool {
	t := strings.TrimLeft(before, " \t")
	t = strings.TrimPrefix(t, "- ")
	t = strings.TrimPrefix(t, "export ")
	return strings.TrimLeft(t, " \t") == ""
}

// replaceCustom applies a WithTextRules pattern: the first capture group,
// or the whole match, becomes Marker.
func replaceCustom(tr namedRE, s string, sum Summary) string {
	idx := tr.re.FindAllStringSubmatchIndex(s, -1)
	if idx == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, loc := range idx {
		from, to := loc[0], loc[1]
		if len(loc) > 2 && loc[2] >= 0 {
			from, to = loc[2], loc[3]
		}
		if from < last || s[from:to] == Marker || from == to {
			continue
		}
		sum.inc(tr.name)
		b.WriteString(s[last:from])
		b.WriteString(Marker)
		last = to
	}
	b.WriteString(s[last:])
	return b.String()
}

// skipValue: values that hold no secret (or were already redacted).
func skipValue(v string) bool {
	switch strings.ToLower(v) {
	case "", "true", "false", "null", "none", "nil", "~", "yes", "no", "{", "[", "-", "|", ">", "***", "******", "********":
		return true
	}
	return strings.HasPrefix(v, "<redacted") || strings.HasPrefix(v, "*****")
}

func hasHint(s string) bool {
	l := strings.ToLower(s)
	for _, h := range hints {
		if strings.Contains(l, h) {
			return true
		}
	}
	return false
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func hasLetter(s string) bool {
	for _, c := range s {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			return true
		}
	}
	return false
}

// replaceFunc replaces each match of re in s with f(submatches) when f
// returns true, and leaves it as it was otherwise.
func replaceFunc(re *regexp.Regexp, s string, f func(m []string) (string, bool)) string {
	idx := re.FindAllStringSubmatchIndex(s, -1)
	if idx == nil {
		return s
	}
	var b strings.Builder
	last := 0
	changed := false
	for _, loc := range idx {
		m := make([]string, len(loc)/2)
		for i := range m {
			if loc[2*i] >= 0 {
				m[i] = s[loc[2*i]:loc[2*i+1]]
			}
		}
		repl, ok := f(m)
		if !ok {
			continue
		}
		changed = true
		b.WriteString(s[last:loc[0]])
		b.WriteString(repl)
		last = loc[1]
	}
	if !changed {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}
