package password

import (
	"fmt"
	"os"

	"golang.org/x/term"
)

// ReadHidden reads one line from the terminal f without echoing it; the
// terminal's settings are restored afterwards.
func ReadHidden(f *os.File) (string, error) {
	b, err := term.ReadPassword(int(f.Fd()))
	if err != nil {
		return "", fmt.Errorf("cannot read from the terminal without echo (%w): use --password-stdin or --generate", err)
	}
	return string(b), nil
}
