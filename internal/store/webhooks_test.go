package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// Webhook rows, their delivery log (one delivery per event and webhook),
// and their secrets re-sealed by a key rotation.
func TestWebhookRows(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
		oldKey, newKey := store.GenerateKey(), store.GenerateKey()
		v, _ := store.NewVault(oldKey)
		h := store.Webhook{URL: "https://hooks.example.com/x", Events: []string{store.EventTicketCreated}, Enabled: true, CreatedAt: at}
		err := db.Write(ctx, func(tx *store.Tx) error {
			if err := tx.CreateWebhook(ctx, &h); err != nil {
				return err
			}
			sealed, err := v.Seal([]byte("whsec_secret"), store.WebhookSecret(h.ID))
			if err != nil {
				return err
			}
			return tx.SetWebhookSecret(ctx, h.ID, sealed, at)
		})
		if err != nil {
			t.Fatal(err)
		}
		d := store.WebhookDelivery{WebhookID: h.ID, EventID: 7, Kind: store.EventTicketCreated, Payload: `{"id":7}`, CreatedAt: at}
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.AddWebhookDelivery(ctx, &d) }); err != nil {
			t.Fatal(err)
		}
		twice := d
		err = db.Write(ctx, func(tx *store.Tx) error { return tx.AddWebhookDelivery(ctx, &twice) })
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("a second delivery of one event: %v", err)
		}
		err = db.Write(ctx, func(tx *store.Tx) error {
			ok, err := tx.RecordWebhookAttempt(ctx, d.ID, store.WebhookAttempt{State: store.WebhookPending, Status: 503,
				Error: "the endpoint answered HTTP 503", NextAttempt: at.Add(time.Minute), At: at})
			if err != nil || !ok {
				return errors.Join(err, errors.New("first attempt not recorded"))
			}
			ok, err = tx.RecordWebhookAttempt(ctx, d.ID, store.WebhookAttempt{State: store.WebhookDelivered, Status: 204, At: at.Add(time.Minute)})
			if err != nil || !ok {
				return errors.Join(err, errors.New("second attempt not recorded"))
			}
			// A finished delivery takes no more attempts.
			ok, err = tx.RecordWebhookAttempt(ctx, d.ID, store.WebhookAttempt{State: store.WebhookFailed, At: at})
			if err != nil || ok {
				return errors.Join(err, errors.New("an attempt was recorded on a delivered delivery"))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.WebhookDelivery(ctx, d.ID)
		if err != nil || got.State != store.WebhookDelivered || got.Attempts != 2 || got.LastStatus != 204 || got.LastError != "" ||
			!got.DeliveredAt.Equal(at.Add(time.Minute)) || got.Payload != `{"id":7}` {
			t.Fatalf("delivery = %+v, %v", got, err)
		}
		list, err := db.Webhooks(ctx)
		if err != nil || len(list) != 1 || list[0].Last.ID != d.ID || list[0].Last.State != store.WebhookDelivered || !list[0].Wants(store.EventTicketCreated) ||
			list[0].Wants(store.EventTicketAssigned) {
			t.Fatalf("webhooks = %+v, %v", list, err)
		}

		if n, err := store.Rotate(ctx, db, oldKey, newKey); err != nil || n != 1 {
			t.Fatalf("rotate: %d, %v", n, err)
		}
		h2, _ := db.Webhook(ctx, h.ID)
		nv, _ := store.NewVault(newKey)
		if plain, err := nv.Open(h2.SecretSealed, store.WebhookSecret(h.ID)); err != nil || string(plain) != "whsec_secret" {
			t.Fatalf("after rotation: %q, %v", plain, err)
		}

		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.DeleteWebhook(ctx, h.ID) }); err != nil {
			t.Fatal(err)
		}
		if _, err := db.WebhookDelivery(ctx, d.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the log outlived its webhook: %v", err)
		}
	})
}
