package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postdesk/postdesk/internal/store"
)

// outboxMetrics are the sender's /metrics.
type outboxMetrics struct {
	sent     prometheus.Counter
	failures *prometheus.CounterVec
	queue    *prometheus.Desc
	db       *store.DB
}

func newOutboxMetrics(db *store.DB, reg prometheus.Registerer) (*outboxMetrics, error) {
	m := &outboxMetrics{db: db,
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "postdesk_replies_sent_total",
			Help: "Outgoing messages (replies and acknowledgements) the mail server accepted."}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "postdesk_reply_failures_total",
			Help: "Failed attempts to send an outgoing message, by kind (temporary ones are tried again)."}, []string{"kind"}),
		queue: prometheus.NewDesc("postdesk_outbox_messages", "Outgoing messages by delivery state.", []string{"state"}, nil),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.sent, m.failures, m} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register outbox metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Describe implements prometheus.Collector (the queue gauge).
func (m *outboxMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.queue }

// Collect counts the outbox by state at scrape time.
func (m *outboxMetrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := m.db.OutboxCounts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(m.queue, err)
		return
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(m.queue, prometheus.GaugeValue, float64(n), state)
	}
}
