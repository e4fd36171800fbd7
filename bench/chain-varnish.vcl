vcl 4.1;
# The "chain" scenario's cache: Varnish in front of HAProxy (:18082), default caching rules.
backend haproxy { .host = "127.0.0.1"; .port = "18082"; }
