package boot_test

import (
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/boot"
	"github.com/latchkey/latchkey/internal/testkit"
)

// TestHelpListsCommands: latchkey help lists every command and needs no
// valid configuration.
func TestHelpListsCommands(t *testing.T) {
	var out testkit.SyncBuffer
	bad := boot.Environ(map[string]string{"LATCHKEY_BCRYPT_COST": "4"})
	if err := boot.Run(context.Background(), []string{"help"}, bad, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Usage: latchkey [command] [flags]", "\n  serve ", "(the default)", "\n  help "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
	if err := boot.Run(context.Background(), []string{"help", "serve"}, nil, &out); err == nil {
		t.Error("help with an argument accepted")
	}
}

// TestUnknownCommand: a first argument that is neither a flag nor a
// command stops with the list of commands.
func TestUnknownCommand(t *testing.T) {
	err := boot.Run(context.Background(), []string{"serv", "-addr", "127.0.0.1:0"}, nil, &testkit.SyncBuffer{})
	if want := `unknown command "serv" (commands: serve, copy, import lb3, user list|show|create|disable|enable|delete|revoke-sessions|reset-link|reset-factors|grant-admin|revoke-admin, help)`; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if _, ok := errors.AsType[*boot.UsageError](err); !ok {
		t.Errorf("%T is not a *boot.UsageError (main exits 2 for those)", err)
	}
}

// TestServeCommandFlags: flags after a command name are parsed by that
// command's FlagSet over the shared settings, and win over the variables.
func TestServeCommandFlags(t *testing.T) {
	t.Parallel()
	base, _, stop := startAppArgs(t, []string{"serve", "-addr", "127.0.0.1:0", "-password-min", "12"},
		map[string]string{"LATCHKEY_ADDR": "not-an-address"})
	if st, _, body := call(t, "GET", base+"/healthz", ""); st != 200 {
		t.Fatalf("healthz %d %s", st, body)
	}
	if st, _, body := call(t, "POST", base+"/api/users", `{"email":"m@example.com","password":"eleven-char"}`); st != 422 || !strings.Contains(body, "PASSWORD_TOO_SHORT") {
		t.Errorf("an 11-character password with -password-min 12: %d %s", st, body)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	var out testkit.SyncBuffer
	if err := boot.Run(context.Background(), []string{"serve", "-h"}, nil, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("serve -h: %v", err)
	}
	if s := out.String(); !strings.HasPrefix(s, "Usage of latchkey serve:\n") || !strings.Contains(s, "(env LATCHKEY_ADDR, default \"127.0.0.1:3000\")") {
		t.Errorf("serve -h:\n%s", s)
	}
	if err := boot.Run(context.Background(), []string{"serve", "extra"}, nil, &out); err == nil || err.Error() != `unexpected argument "extra"` {
		t.Errorf("serve extra: %v", err)
	}
	if err := boot.Run(context.Background(), []string{"serve", "-bcrypt-cost", "99"}, nil, &out); err == nil || !strings.Contains(err.Error(), "config -bcrypt-cost:") {
		t.Errorf("serve -bcrypt-cost 99: %v", err)
	}
}

// TestDefaultHelp: without a command, -h prints the settings under the
// program's name, as before there were commands.
func TestDefaultHelp(t *testing.T) {
	var out testkit.SyncBuffer
	if err := boot.Run(context.Background(), []string{"-h"}, nil, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	if s := out.String(); !strings.HasPrefix(s, "Usage of latchkey:\n") || !strings.Contains(s, "-hash-queue") {
		t.Errorf("-h:\n%s", s)
	}
}
