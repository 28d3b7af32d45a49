package oauth_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// /metrics has the seconds until each mailbox's earlier deadline, and its state.
func TestMetricsCollector(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	e := newEnv(t, db, nil)
	e.connect(e.mb)
	// A mailbox added but never signed in.
	ctx := context.Background()
	err := db.Write(ctx, func(tx *store.Tx) error {
		mb, err := tx.CreateMailbox(ctx, "new@example.com", "")
		if err != nil {
			return err
		}
		return tx.SetMailboxAuthKind(ctx, mb.ID, store.AuthOAuth, "microsoft", time.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.svc.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var left float64 = math.NaN()
	states := map[string]float64{}
	fresh := map[string]float64{}
	for _, f := range families {
		for _, m := range f.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["mailbox"] == "new@example.com" && f.GetName() == "postdesk_mailbox_auth_state" {
				fresh[labels["state"]] = m.Gauge.GetValue()
			}
			if labels["mailbox"] != support {
				continue
			}
			switch f.GetName() {
			case "postdesk_mailbox_auth_seconds_left":
				left = m.Gauge.GetValue()
			case "postdesk_mailbox_auth_state":
				states[labels["state"]] = m.Gauge.GetValue()
			}
		}
	}
	want := (90 * 24 * time.Hour).Seconds()
	if math.Abs(left-want) > 60 {
		t.Errorf("seconds left = %v, want about %v (90 days)", left, want)
	}
	if states[string(store.AuthOK)] != 1 || states[string(store.AuthExpiring)] != 0 {
		t.Errorf("states = %v", states)
	}
	if fresh["not_connected"] != 1 || fresh[string(store.AuthNeedsReauth)] != 0 {
		t.Errorf("states of a never-connected mailbox = %v, want not_connected", fresh)
	}
}
