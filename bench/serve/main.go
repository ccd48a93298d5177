// Command serve is the benchmark's stand-in for a documentation site: a
// static file server on loopback that answers conditional requests the way a
// well-configured web server does, so that re-crawl figures measure the
// crawler's incremental path rather than the network.
//
//	serve -dir /usr/share/doc/postgresql-doc-15/html -port 0
//
// The first line on stdout is the base URL ("http://127.0.0.1:PORT/"); the
// harness reads it to learn the port the kernel picked.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	dir := flag.String("dir", ".", "folder to serve")
	port := flag.Int("port", 0, "port on 127.0.0.1 (0 picks a free one)")
	quiet := flag.Bool("quiet", true, "do not log requests")
	flag.Parse()

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("http://%s/\n", ln.Addr())
	// The harness may read stdout through a pipe; make sure the address is
	// not stuck in a buffer.
	os.Stdout.Sync()

	h := Handler(*dir)
	if !*quiet {
		h = logRequests(h)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// allowAll is served when the folder has no robots.txt, so that crawlers
// which honour robots (panther does) see an explicit, permissive answer
// instead of a 404 whose handling differs from crawler to crawler.
const allowAll = "User-agent: *\nAllow: /\n"

// Handler serves dir: regular files through http.ServeContent, which does
// Last-Modified / If-Modified-Since and, once an ETag header is set,
// If-None-Match; directories through http.FileServer.
func Handler(dir string) http.Handler {
	files := http.FileServer(http.Dir(dir))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clean := path.Clean("/" + r.URL.Path)
		if clean == "/robots.txt" {
			if _, err := os.Stat(filepath.Join(dir, "robots.txt")); err != nil {
				serveRobots(w, r)
				return
			}
		}
		if serveFile(w, r, filepath.Join(dir, filepath.FromSlash(clean))) {
			return
		}
		files.ServeHTTP(w, r)
	})
}

// serveFile answers for regular files itself because FileServer redirects
// ".../index.html" to ".../", and the manual links to index.html
// everywhere: each of those links would cost a crawler an extra round trip
// and give the seed a second URL.
func serveFile(w http.ResponseWriter, r *http.Request, name string) bool {
	f, err := os.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	// mtime-size in hex, as nginx does: cheap, and it changes whenever the
	// file is rewritten, which is all a re-crawl test needs.
	w.Header().Set("ETag", fmt.Sprintf(`"%x-%x"`, fi.ModTime().Unix(), fi.Size()))
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
	return true
}

var robotsTime = time.Now()

func serveRobots(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("ETag", `"robots-allow-all"`)
	http.ServeContent(w, r, "robots.txt", robotsTime, strings.NewReader(allowAll))
}

func logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		log.Printf("%s %s %d", r.Method, r.URL.RequestURI(), rec.status)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
