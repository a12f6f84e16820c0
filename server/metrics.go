package server

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/brygga/brygga/sync/wire"
)

// metrics are the server's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	mutations *prometheus.CounterVec
	pulled    prometheus.Counter
	handler   fiber.Handler
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "brygga_http_requests_total", Help: "HTTP requests by route, method and status.",
	}, []string{"route", "method", "status"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "brygga_http_request_duration_seconds", Help: "HTTP request duration by route.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 10),
	}, []string{"route"})
	m.mutations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "brygga_sync_mutations_total", Help: "Pushed mutations by outcome.",
	}, []string{"status"})
	for _, st := range []wire.Status{wire.Applied, wire.Duplicate, wire.Rejected} {
		m.mutations.WithLabelValues(string(st)) // every outcome shows, at 0 until it happens
	}
	m.pulled = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "brygga_sync_pulled_changes_total", Help: "Changes sent to devices by pulls.",
	})
	stats := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "brygga_db_open_connections", Help: "Open database connections (writer and readers).",
	}, func() float64 {
		return float64(s.store.OpenConnections())
	})
	size := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "brygga_db_size_bytes", Help: "Size of the database file and its write-ahead log.",
	}, func() float64 {
		return float64(s.store.SizeBytes())
	})
	m.reg.MustRegister(m.requests, m.duration, m.mutations, m.pulled, stats, size,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = adaptor.HTTPHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	return m
}

func (m *metrics) middleware(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	route := "unmatched"
	if r := c.Route(); r != nil && r.Path != "/" {
		route = r.Path
	}
	m.requests.WithLabelValues(route, c.Method(), strconv.Itoa(c.Response().StatusCode())).Inc()
	m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	return err
}

func (m *metrics) observePush(resp *wire.PushResponse) {
	for _, r := range resp.Results {
		m.mutations.WithLabelValues(string(r.Status)).Inc()
	}
}
