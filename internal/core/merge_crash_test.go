package core

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"postfach/internal/store"
	"postfach/internal/store/storetest"
)

// The crash test runs the merge in a child process (this test binary, re-executed with
// envMergeChild set) and kills it with SIGKILL: once while the merge transaction has done
// all its work but not committed, and several times at random moments. After every kill the
// database must hold exactly the state before or exactly the state after the merge.

const envMergeChild = "POSTFACH_TEST_MERGE_CHILD" // "hold" or "run"

func TestMergeChildProcess(t *testing.T) {
	mode := os.Getenv(envMergeChild)
	if mode == "" {
		t.Skip("helper process of TestMergeCrash")
	}
	ctx := context.Background()
	env := func(name string) int64 { n, _ := strconv.ParseInt(os.Getenv(name), 10, 64); return n }
	db, err := store.Open(ctx, os.Getenv("POSTFACH_TEST_MERGE_URL"), os.Getenv("POSTFACH_TEST_MERGE_PATH"))
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	svc := newAccountsService(t, db)
	a, _ := AsOperatorIn(Actor{Kind: ActorSystem, Name: "crash"}, env("POSTFACH_TEST_MERGE_TENANT"))
	source, target := env("POSTFACH_TEST_MERGE_SOURCE"), env("POSTFACH_TEST_MERGE_TARGET")
	p, err := svc.AccountMergePreview(ctx, a, source, target)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	in := MergeInput{TargetID: target, Confirm: p.Confirm}
	fmt.Println("START")
	if mode == "hold" {
		_ = db.InTx(ctx, func(tx *store.Tx) error {
			if _, err := svc.mergeInTx(ctx, tx, a, a.TenantID, source, in); err != nil {
				fmt.Println("ERROR", err)
				os.Exit(2)
			}
			fmt.Println("INSIDE") // every statement ran; the commit has not
			time.Sleep(time.Hour)
			return nil
		})
	}
	if _, err := svc.MergeAccounts(ctx, a, source, in); err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	fmt.Println("DONE")
	os.Exit(0)
}

func TestMergeCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test re-executes the test binary")
	}
	const perAccount = 5000
	dbURL, path := storetest.URL(t)
	ctx := context.Background()
	db, err := store.Open(ctx, dbURL, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	f, source, target := mergeSetup(t, db, perAccount)
	before := readMergeState(t, db, f.tenant, source.ID)

	child := func(mode string) (*exec.Cmd, *bufio.Scanner) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMergeChildProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), envMergeChild+"="+mode,
			"POSTFACH_TEST_MERGE_URL="+dbURL, "POSTFACH_TEST_MERGE_PATH="+path,
			"POSTFACH_TEST_MERGE_TENANT="+strconv.FormatInt(f.tenant, 10),
			"POSTFACH_TEST_MERGE_SOURCE="+strconv.FormatInt(source.ID, 10),
			"POSTFACH_TEST_MERGE_TARGET="+strconv.FormatInt(target.ID, 10))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, bufio.NewScanner(out)
	}
	waitFor := func(sc *bufio.Scanner, word string) {
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "ERROR") {
				t.Fatalf("child: %s", line)
			}
			if line == word {
				return
			}
		}
		t.Fatalf("child ended before %s", word)
	}
	kill := func(cmd *exec.Cmd) {
		_ = cmd.Process.Kill() // SIGKILL: no deferred code, no rollback by the client
		_ = cmd.Wait()
	}

	// 1. Killed inside the transaction after every statement: the state before.
	cmd, sc := child("hold")
	waitFor(sc, "INSIDE")
	kill(cmd)
	if got := readMergeState(t, db, f.tenant, source.ID); got != before {
		t.Fatalf("after a kill inside the merge: %+v, want the state before %+v", got, before)
	}

	// 2. Killed at random moments: before or after, never in between.
	var sawBefore, sawAfter int
	for i := 0; i < 6; i++ {
		cmd, sc := child("run")
		waitFor(sc, "START")
		time.Sleep(time.Duration(rand.IntN(60)) * time.Millisecond)
		kill(cmd)
		got := readMergeState(t, db, f.tenant, source.ID)
		switch {
		case got == before:
			sawBefore++
		case !got.SourceExists:
			checkMerged(t, db, f, before, got, source, target, perAccount)
			sawAfter++
		default:
			t.Fatalf("kill %d left a state that is neither before nor after: %+v", i, got)
		}
		if sawAfter > 0 {
			break
		}
	}
	t.Logf("random kills: %d left the state before, %d the state after", sawBefore, sawAfter)

	// 3. Finally the merge runs to the end.
	if sawAfter == 0 {
		cmd, sc := child("run")
		waitFor(sc, "DONE")
		_ = cmd.Wait()
	}
	checkMerged(t, db, f, before, readMergeState(t, db, f.tenant, source.ID), source, target, perAccount)
}
