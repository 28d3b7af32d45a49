package mailtest

import (
	"context"
	"errors"
	"net"
	"testing"
)

// A made-up name is "no such host", answered here; localhost still resolves.
func TestNoSuchHost(t *testing.T) {
	r := NoSuchHost()
	_, err := r.LookupHost(context.Background(), "imap.postdesk-test.invalid")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("lookup of a made-up name: %v, want no such host", err)
	}
	if addrs, err := r.LookupHost(context.Background(), "localhost"); err != nil || len(addrs) == 0 {
		t.Errorf("lookup of localhost: %v %v", addrs, err)
	}
}
