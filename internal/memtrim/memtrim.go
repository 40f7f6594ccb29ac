// Package memtrim gives back memory a long-running process touched only
// while starting.
//
// quayctl is one binary: the registry server links the whole toolkit
// (client-go, the podman bindings, the AWS SDK…), and Go runs every linked
// package's init at start. Those inits fault in pages of the executable
// all over its text and read-only data (the kernel maps 64 KiB around
// each fault), so an idle `quayctl serve` would keep some 50 MiB of the
// executable resident that it never executes again.
package memtrim

// AfterStartup returns the executable's start-up pages to the page cache
// and unused heap to the operating system. Pages the server still uses
// fault back in cheaply from the page cache (minor faults, no I/O). It
// reports how many bytes of mappings it advised; errors are not fatal:
// this only affects memory accounting, never behaviour.
func AfterStartup() (advised int64, err error) {
	return afterStartup()
}
