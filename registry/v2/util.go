package v2

import (
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// blobModTime is a fixed Last-Modified: blobs are immutable.
var blobModTime = time.Unix(0, 0)

func cutPrefix(s, p string) (string, bool)     { return strings.CutPrefix(s, p) }
func cut(s, sep string) (string, string, bool) { return strings.Cut(s, sep) }

func parseStored(s string) digest.Digest { return digest.Digest(s) }
