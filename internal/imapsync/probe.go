package imapsync

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// ProbeStep is the step of a connection test that failed.
type ProbeStep string

// The steps of Probe, in order.
const (
	StepDNS      ProbeStep = "dns"      // the host name does not resolve
	StepTCP      ProbeStep = "tcp"      // nothing answers on the port
	StepTLS      ProbeStep = "tls"      // the TLS handshake or the certificate failed
	StepGreeting ProbeStep = "greeting" // the server did not greet as IMAP (RFC 9051 7.1)
	StepAuth     ProbeStep = "auth"     // the server refused the credentials
	StepFolder   ProbeStep = "folder"   // a folder to fetch (or to move to) is missing
)

// ProbeError says which step of Probe failed. ServerText is what the server
// answered, in its own words, when it answered (a refused login: "[AUTHENTICATIONFAILED]
// Authentication failed."); Folder is the missing folder of StepFolder.
type ProbeError struct {
	Step       ProbeStep
	Addr       string
	Folder     string
	ServerText string
	Err        error
}

func (e *ProbeError) Error() string {
	s := fmt.Sprintf("imapsync: probe %s: %s step failed", e.Addr, e.Step)
	if e.Folder != "" {
		s += " (folder " + strconv.Quote(e.Folder) + ")"
	}
	return s + ": " + e.Err.Error()
}

func (e *ProbeError) Unwrap() error { return e.Err }

// Probe tries cfg once without fetching anything: it resolves the host,
// connects, negotiates TLS as cfg says, waits for the greeting, signs in
// and checks that every folder (and MoveTo) exists with STATUS (RFC 9051
// 6.3.11), then logs out. A failure is a *ProbeError naming the step.
func Probe(ctx context.Context, cfg Config) error {
	cfg, err := cfg.normalize()
	if err != nil {
		return err
	}
	host, portText, _ := net.SplitHostPort(cfg.Addr)
	fail := func(step ProbeStep, err error) error {
		pe := &ProbeError{Step: step, Addr: cfg.Addr, Err: err}
		var ie *imap.Error
		if errors.As(err, &ie) {
			pe.ServerText = ie.Text
			if ie.Code != "" {
				pe.ServerText = "[" + string(ie.Code) + "] " + ie.Text
			}
		}
		return pe
	}
	if net.ParseIP(host) == nil {
		r := cfg.Resolver
		if r == nil {
			r = net.DefaultResolver
		}
		if _, err := r.LookupHost(ctx, host); err != nil {
			return fail(StepDNS, err)
		}
	}
	d := &net.Dialer{Timeout: dialTimeout, Resolver: cfg.Resolver}
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return fail(StepTCP, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var c *imapclient.Client
	switch cfg.Security {
	case SecurityTLS:
		tc := tls.Client(conn, cfg.tlsConfig(host))
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(StepTLS, err)
		}
		c = imapclient.New(tc, nil)
	case SecurityStartTLS:
		// NewStartTLS reads the greeting, sends STARTTLS (RFC 9051 6.2.1)
		// and shakes hands: tell the TLS failures from the others.
		c, err = imapclient.NewStartTLS(conn, &imapclient.Options{TLSConfig: cfg.tlsConfig(host)})
		if err != nil {
			// A server that answers STARTTLS with an IMAP refusal ("TLS
			// support isn't enabled") greeted as IMAP: its TLS is the fault.
			var ie *imap.Error
			if isTLSFailure(err) || errors.As(err, &ie) {
				return fail(StepTLS, err)
			}
			return fail(StepGreeting, err)
		}
	default:
		c = imapclient.New(conn, nil)
	}
	defer c.Close()
	s := &session{cfg: &cfg, c: c, log: cfg.Logger}
	if err := s.wait(c.WaitGreeting); err != nil {
		return fail(StepGreeting, err)
	}
	port, _ := strconv.Atoi(portText)
	if err := s.authenticate(ctx, host, port); err != nil {
		return fail(StepAuth, err)
	}
	folders := cfg.Folders
	if cfg.AfterProcessing == ActionMove {
		folders = append(folders[:len(folders):len(folders)], cfg.MoveTo)
	}
	for _, f := range folders {
		err := s.wait(func() error { _, err := c.Status(f, &imap.StatusOptions{NumMessages: true}).Wait(); return err })
		if err != nil {
			pe := fail(StepFolder, err).(*ProbeError)
			pe.Folder = f
			return pe
		}
	}
	s.wait(func() error { return c.Logout().Wait() })
	return nil
}

// isTLSFailure reports whether err comes from the TLS handshake or the
// server's certificate.
func isTLSFailure(err error) bool {
	var (
		cv  *tls.CertificateVerificationError
		rh  tls.RecordHeaderError
		ua  x509.UnknownAuthorityError
		hn  x509.HostnameError
		ci  x509.CertificateInvalidError
		alt tls.AlertError
	)
	return errors.As(err, &cv) || errors.As(err, &rh) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &alt)
}
