package health

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// RedisPing does what Quay's redis check does against BUILDLOGS_REDIS:
// PING, then SET and GET of the key "_health", with 1 s timeouts. Only these
// three commands are needed, so a few lines of RESP replace a client library.
func RedisPing(host string, port int, password string) Check {
	return func(ctx context.Context) error {
		d := net.Dialer{Timeout: time.Second}
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(time.Second))
		rd := bufio.NewReader(conn)
		do := func(args ...string) (string, error) {
			var b strings.Builder
			fmt.Fprintf(&b, "*%d\r\n", len(args))
			for _, a := range args {
				fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
			}
			if _, err := conn.Write([]byte(b.String())); err != nil {
				return "", err
			}
			line, err := rd.ReadString('\n')
			if err != nil {
				return "", err
			}
			line = strings.TrimRight(line, "\r\n")
			if strings.HasPrefix(line, "-") {
				return "", fmt.Errorf("redis: %s", line[1:])
			}
			if strings.HasPrefix(line, "$") {
				n, _ := strconv.Atoi(line[1:])
				if n < 0 {
					return "", nil
				}
				buf := make([]byte, n+2)
				if _, err := ioReadFull(rd, buf); err != nil {
					return "", err
				}
				return string(buf[:n]), nil
			}
			return strings.TrimPrefix(line, "+"), nil
		}
		if password != "" {
			if _, err := do("AUTH", password); err != nil {
				return err
			}
		}
		if r, err := do("PING"); err != nil || r != "PONG" {
			return fmt.Errorf("redis PING failed: %v %q", err, r)
		}
		if _, err := do("SET", "_health", "true"); err != nil {
			return err
		}
		if r, err := do("GET", "_health"); err != nil || r != "true" {
			return fmt.Errorf("redis GET _health failed: %v", err)
		}
		return nil
	}
}

func ioReadFull(rd *bufio.Reader, buf []byte) (int, error) { return io.ReadFull(rd, buf) }
