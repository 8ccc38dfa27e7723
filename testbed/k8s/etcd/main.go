// Command etcd runs a single-member etcd server for the test bed's Kubernetes control plane,
// on loopback only, from go.etcd.io/etcd/server/v3/embed (no etcd binary is available from the
// package registries this project may use).
package main

import (
	"flag"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func mustURL(raw string) url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		log.Fatalf("etcd: %q is not a URL: %v", raw, err)
	}
	return *u
}

func main() {
	dataDir := flag.String("data-dir", "", "folder for the member's data (required)")
	client := flag.String("listen-client-url", "http://127.0.0.1:2379", "where clients connect")
	peer := flag.String("listen-peer-url", "http://127.0.0.1:2380", "the member's peer URL")
	removeOnExit := flag.Bool("remove-data-dir", false, "remove --data-dir when stopped by SIGINT or SIGTERM (a test bed's throwaway member)")
	flag.Parse()
	if *dataDir == "" {
		log.Fatal("etcd: --data-dir is required")
	}

	cfg := embed.NewConfig()
	cfg.Name = "testbed"
	cfg.Dir = *dataDir
	cfg.LogLevel = "warn"
	clientURL, peerURL := mustURL(*client), mustURL(*peer)
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)

	server, err := embed.StartEtcd(cfg)
	if err != nil {
		log.Fatalf("etcd: cannot start: %v", err)
	}
	defer server.Close()
	select {
	case <-server.Server.ReadyNotify():
		log.Printf("etcd: ready on %s", clientURL.String())
	case <-time.After(60 * time.Second):
		server.Server.Stop()
		log.Fatal("etcd: not ready after 60s")
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	select {
	case err := <-server.Err():
		log.Fatalf("etcd: %v", err)
	case <-stop:
	}
	server.Close()
	if *removeOnExit {
		if err := os.RemoveAll(*dataDir); err != nil {
			log.Printf("etcd: cannot remove %s: %v", *dataDir, err)
		}
	}
}
