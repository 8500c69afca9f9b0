package smtpd

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/textproto"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"postfach/internal/store"
	"postfach/internal/store/storetest"
	"postfach/internal/testpeers"
)

// TestCrashNeverLosesAcknowledgedMail kills a real "postfach serve" with SIGKILL at least 20
// times while clients deliver 2,000 messages and retry whatever got no 250. Afterwards every
// message that got 250 is stored, and none is stored twice.
func TestCrashNeverLosesAcknowledgedMail(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the postfach binary")
	}
	const (
		messages  = 2000
		workers   = 8
		minKills  = 20
		killEvery = messages / (minKills + 4) // acknowledged messages between two kills
	)
	// The database the server uses, prepared (and later counted) from here.
	dbURL, _ := storetest.URL(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	ctx := context.Background()
	db, err := store.Open(ctx, dbURL, filepath.Join(dataDir, "postfach.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var rcpt string
	err = db.InTx(ctx, func(tx *store.Tx) error {
		ten, err := tx.CreateTenant(ctx, store.Tenant{Name: "Crash", Slug: "crash", MailboxQuota: 1})
		if err != nil {
			return err
		}
		m, err := tx.CreateMailbox(ctx, ten.ID, store.Mailbox{Kind: store.KindAccount, Address: "info@crash.example", Active: true})
		rcpt = store.InboundAddress(m.ID, inboundDomain)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	smtpAddr := testpeers.FreeAddr(t)
	server := testpeers.StartServe(t, testpeers.ServeConfig{DataDir: dataDir, DatabaseURL: dbURL, SMTPAddr: smtpAddr,
		Flags: []string{"--inbound-domain", inboundDomain, "--hostname", "mx.crash.test"}})

	var acked sync.Map // Message-ID -> true once a 250 came back
	var ackedCount, attempts atomic.Int64
	next := make(chan int, messages)
	for i := range messages {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	deadline := time.Now().Add(4 * time.Minute) // generous: a loaded CI machine is slow, and only losses are failures
	for range workers {
		wg.Go(func() {
			var cl *crashClient
			for i := range next {
				id := fmt.Sprintf("crash-%d@client.test", i)
				for {
					if time.Now().After(deadline) {
						return
					}
					attempts.Add(1)
					if cl == nil {
						cl, _ = dialCrashClient(smtpAddr)
					}
					if cl != nil && cl.send(rcpt, id) == nil {
						acked.Store(id, true)
						ackedCount.Add(1)
						break
					}
					if cl != nil {
						cl.close()
						cl = nil
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			if cl != nil {
				cl.close()
			}
		})
	}
	kills := 0
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-time.After(2 * time.Millisecond):
			if ackedCount.Load() >= int64((kills+1)*killEvery) && ackedCount.Load() < messages {
				server.Restart()
				kills++
			}
		}
	}
	if n := ackedCount.Load(); n != messages {
		t.Fatalf("only %d of %d messages acknowledged before the deadline", n, messages)
	}

	rows, err := db.SQL().QueryContext(ctx, `SELECT message_id, COUNT(*) FROM messages GROUP BY message_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	stored, duplicated := map[string]bool{}, 0
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		stored[id] = true
		if n > 1 {
			duplicated++
		}
	}
	lost := 0
	acked.Range(func(k, _ any) bool {
		if !stored[k.(string)] {
			lost++
		}
		return true
	})
	fmt.Printf("inbound crash test (%s): %d messages, %d acknowledged, %d delivery attempts, %d kill -9, %d stored, %d lost, %d duplicated\n",
		db.Dialect(), messages, ackedCount.Load(), attempts.Load(), kills, len(stored), lost, duplicated)
	if kills < minKills {
		t.Errorf("only %d kills", kills)
	}
	if lost != 0 || duplicated != 0 {
		t.Fatalf("%d acknowledged messages lost, %d stored twice", lost, duplicated)
	}
}

// crashClient is one SMTP session that delivers messages one after another.
type crashClient struct {
	conn net.Conn
	r    *textproto.Reader
	w    *textproto.Writer
}

func dialCrashClient(addr string) (*crashClient, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	c := &crashClient{conn: conn, r: textproto.NewReader(bufio.NewReader(conn)), w: textproto.NewWriter(bufio.NewWriter(conn))}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := c.r.ReadResponse(220); err != nil {
		conn.Close()
		return nil, err
	}
	if err := c.cmd("EHLO crash.client", 250); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (c *crashClient) cmd(line string, want int) error {
	if err := c.w.PrintfLine("%s", line); err != nil {
		return err
	}
	_, _, err := c.r.ReadResponse(want)
	return err
}

// send delivers one message; nil only after the 250 that follows the data.
func (c *crashClient) send(rcpt, msgID string) error {
	c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.cmd("MAIL FROM:<load@client.test>", 250); err != nil {
		return err
	}
	if err := c.cmd("RCPT TO:<"+rcpt+">", 250); err != nil {
		return err
	}
	if err := c.cmd("DATA", 354); err != nil {
		return err
	}
	dw := c.w.DotWriter()
	fmt.Fprintf(dw, "From: load@client.test\r\nTo: info@crash.example\r\nSubject: crash\r\nMessage-ID: <%s>\r\n\r\n", msgID)
	for range 10 {
		dw.Write([]byte("0123456789 0123456789 0123456789 0123456789 0123456789 0123456789 0123456789 0123456789 012345\r\n"))
	}
	if err := dw.Close(); err != nil {
		return err
	}
	_, _, err := c.r.ReadResponse(250)
	return err
}

func (c *crashClient) close() { c.conn.Close() }
