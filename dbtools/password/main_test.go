package password_test

import (
	"os"
	"testing"

	"github.com/quayctl/quayctl/internal/testpg"
)

func TestMain(m *testing.M) {
	code := testpg.Run(m)
	closePodman()
	os.Exit(code)
}
