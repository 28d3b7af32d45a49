package oauth

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postdesk/postdesk/internal/store"
)

var (
	secondsLeftDesc = prometheus.NewDesc("postdesk_mailbox_auth_seconds_left",
		"Seconds until the earlier of a mailbox's two authorization deadlines (negative once past).",
		[]string{"mailbox", "provider"}, nil)
	stateDesc = prometheus.NewDesc("postdesk_mailbox_auth_state",
		"1 for the authorization state each OAuth mailbox is in.",
		[]string{"mailbox", "state"}, nil)
)

// StateNotConnected is the postdesk_mailbox_auth_state of an OAuth
// mailbox that was added but never signed in.
const StateNotConnected store.AuthState = "not_connected"

// collector exports every OAuth mailbox's deadline and state at scrape time.
type collector struct{ s *Service }

// Collector returns a Prometheus collector of the mailboxes' authorization
// deadlines and states, read from the database at each scrape.
func (s *Service) Collector() prometheus.Collector { return collector{s} }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- secondsLeftDesc
	ch <- stateDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	statuses, err := c.s.Statuses(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(secondsLeftDesc, err)
		return
	}
	now := c.s.utcNow()
	for _, st := range statuses {
		if st.Kind != store.AuthOAuth {
			continue
		}
		if !st.Deadline.IsZero() {
			ch <- prometheus.MustNewConstMetric(secondsLeftDesc, prometheus.GaugeValue, st.SecondsLeft(now), st.Address, st.Provider)
		}
		// A mailbox that never signed in is not_connected, not needs_reauth:
		// an alert on needs_reauth must not fire for a mailbox being set up.
		current := st.State
		if st.NotConnected {
			current = StateNotConnected
		}
		for _, state := range []store.AuthState{store.AuthOK, store.AuthExpiring, store.AuthNeedsReauth, store.AuthProviderFault, StateNotConnected} {
			v := 0.0
			if current == state {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, v, st.Address, string(state))
		}
	}
}
