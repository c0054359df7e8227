package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
)

// pingUser is about the size of the user JSON the API answers.
type pingUser struct {
	Email string `json:"email"`
	ID    int64  `json:"id"`
}

// servePing is the baseline: a bare Echo server (no middleware) answering
// GET /ping with small JSON, run as a child process of the load test so its
// CPU and memory are measured exactly like the app's. It stops on SIGTERM,
// and in any case after an hour.
func servePing() error {
	addr := os.Getenv("LOADTEST_PING_ADDR")
	if addr == "" {
		return errors.New("LOADTEST_PING_ADDR is not set")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard)
	ping := func(c echo.Context) error {
		return c.JSON(http.StatusOK, pingUser{Email: "ping@example.com", ID: 1})
	}
	e.GET("/ping", ping)
	// The same path as the API's, so the baseline run can use the very same
	// wrk script (a per-request Authorization header, ignored here) and the
	// load generator costs the same per request in both runs.
	e.GET("/api/users/:id", ping)
	srv := &http.Server{Addr: addr, Handler: e, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, c2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer c2()
	return srv.Shutdown(sctx)
}
