package fakeidp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Run serves a new IdP with opts on addr until ctx is done. It is what
// `postdesk fakeidp` and the demo call.
func Run(ctx context.Context, addr string, opts Options) error {
	return New(opts).ListenAndServe(ctx, addr)
}

// ListenAndServe serves idp on addr until ctx is done, then shuts down
// gracefully (5 s). It logs the address and the accounts that can sign in.
func (idp *IdP) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("fakeidp listen on %s: %w", addr, err)
	}
	return idp.Serve(ctx, ln)
}

// Serve serves idp on ln until ctx is done; ln is closed on return.
func (idp *IdP) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           idp,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(idp.log.Handler(), slog.LevelWarn),
	}
	base := idp.opts.BaseURL
	if base == "" {
		base = "http://" + ln.Addr().String()
	}
	idp.log.Info("fakeidp listening", "addr", ln.Addr().String(),
		"authority", base+"/"+idp.opts.TenantID+"/v2.0", "introspection_url", base+"/introspect")
	for _, m := range idp.mounted() {
		idp.log.Info("fakeidp also serves", "name", m.name, "url", base+m.urlPath)
	}
	for _, a := range idp.Accounts() {
		idp.log.Info("fakeidp account", "account", a.Address, "name", a.Name, "password_sign_in", a.Password != "")
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("fakeidp serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
		return fmt.Errorf("fakeidp shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("fakeidp serve: %w", err)
	}
	return nil
}
