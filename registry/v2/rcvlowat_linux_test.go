package v2

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func rcvLowatOf(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	return v
}

// TestBatchedBody: a large body is read whole through a raised receive
// low-water mark even when the client pauses and then, having sent the
// last byte, waits for the answer without closing; the mark is back to 1
// afterwards, so the next request on the same connection, sent in small
// pieces, is still read.
func TestBatchedBody(t *testing.T) {
	const size = 6<<20 + 1234
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(i * 7)
	}
	want := sha256.Sum256(body)
	type seen struct {
		sum                   [32]byte
		n                     int64
		markDuring, markAfter int
	}
	got := make(chan seen, 2)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ConnContext: ConnContext, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := r.Context().Value(connKey{}).(*net.TCPConn)
		var s seen
		if r.ContentLength > 0 {
			b, restore := batchedBody(r.Context(), r.Body, r.ContentLength)
			h := sha256.New()
			n, _ := io.CopyN(h, b, 1<<20)
			s.markDuring = rcvLowatOf(t, c)
			m, _ := io.Copy(h, b)
			restore()
			s.n = n + m
			copy(s.sum[:], h.Sum(nil))
		}
		s.markAfter = rcvLowatOf(t, c)
		got <- s
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(conn, "PUT /x HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n", size)
	// Send in pieces with pauses, so that reads find the socket empty and
	// must wait on the mark; the last piece is smaller than the mark.
	for off := 0; off < size; {
		n := min(size-off, 300<<10)
		if _, err := conn.Write(body[off : off+n]); err != nil {
			t.Fatal(err)
		}
		off += n
		time.Sleep(5 * time.Millisecond)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer after the whole body was sent (the reader waited for bytes that never come?): %v", err)
	}
	resp.Body.Close()
	s := <-got
	if s.n != size || s.sum != want {
		t.Fatalf("read %d bytes, want %d, digest equal %v", s.n, size, s.sum == want)
	}
	if s.markDuring != rcvLowat || s.markAfter != 1 {
		t.Errorf("SO_RCVLOWAT during the body %d (want %d), after %d (want 1)", s.markDuring, rcvLowat, s.markAfter)
	}

	// The next request on the connection arrives in two small pieces.
	req := "GET /y HTTP/1.1\r\nHost: test\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := conn.Write([]byte("\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("second request on the connection: %v", err)
	}
	resp.Body.Close()
	if s := <-got; s.markAfter != 1 {
		t.Errorf("SO_RCVLOWAT on the next request %d, want 1", s.markAfter)
	}
}
