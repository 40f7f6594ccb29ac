package quota

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	cases := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{"10 GiB", 10 << 30, ""},
		{"10GiB", 10 << 30, ""},
		{"10 gib", 10 << 30, ""},
		{"10 Gi", 10 << 30, ""},
		{"10 G", 10_000_000_000, ""},
		{"10 GB", 10_000_000_000, ""},
		{"1.5 TiB", 3 << 39, ""},
		{"500 MiB", 500 << 20, ""},
		{"2 kb", 2000, ""},
		{"1024", 1024, ""},
		{" 7 bytes ", 7, ""},
		{"", 0, "cannot read"},
		{"ten GiB", 0, "cannot read"},
		{"10 GiBs", 0, "cannot read"},
		{"1.2.3 GiB", 0, "not a number"},
		{"0 GiB", 0, "more than zero"},
		{"-5 GiB", 0, "cannot read"},
		{"100 EiB", 0, "too large"},
	}
	for _, c := range cases {
		got, err := ParseSize(c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ParseSize(%q) = %d, %v; want error containing %q", c.in, got, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	cases := []struct {
		in   int64
		want string
	}{
		{0, "0.0 Bytes"},
		{1000, "1000.0 Bytes"},
		{1536, "1.5 KiB"},
		{10 << 30, "10.0 GiB"},
		{10_000_000_000, "9.3 GiB"},
	}
	for _, c := range cases {
		if got := FormatSize(c.in); got != c.want {
			t.Errorf("FormatSize(%d) = %q, want %q", c.in, got, c.want)
		}
	}
}
