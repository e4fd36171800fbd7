vcl 4.1;
backend web1 { .host = "127.0.0.1"; .port = "19001"; }
