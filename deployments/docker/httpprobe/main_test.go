package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			_, _ = io.WriteString(w, `{"status":"healthy"}`)
		case "/unavailable":
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	tests := []struct {
		name string
		args []string
		want int
	}{
		{"healthy", []string{srv.URL + "/ok"}, 0},
		{"all healthy", []string{srv.URL + "/ok", srv.URL + "/ok"}, 0},
		{"503", []string{srv.URL + "/unavailable"}, 1},
		{"404 after a healthy one", []string{srv.URL + "/ok", srv.URL + "/missing"}, 1},
		{"connection refused", []string{"-timeout", "1s", "http://127.0.0.1:1/"}, 1},
		{"bad url", []string{"::"}, 1},
		{"no url", nil, 2},
		{"bad flag", []string{"-nope", srv.URL}, 2},
		{"zero timeout", []string{"-timeout", "0s", srv.URL + "/ok"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(tt.args, io.Discard); got != tt.want {
				t.Errorf("run(%q) = %d, want %d", tt.args, got, tt.want)
			}
		})
	}
}
