//! The hot spare's copying (`cache::peers`), on a thread of its own for the instance's life,
//! following the config: every `warm_interval` while `[cache] warm` is on.

use std::time::Duration;

/// A hot spare's copying, on a thread of its own while the config keeps `warm` on: every
/// `warm_interval`, each peer's hottest keys, and the objects of them this node lacks.
pub fn keep_warm(shared: std::sync::Weak<super::Shared>) {
    let _ = std::thread::Builder::new()
        .name("cache-warm".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                // Ends with the instance.
                while let Some(shared) = shared.upgrade() {
                    let current = shared.current();
                    drop(shared);
                    let peers = &current.config.cache.peers;
                    let interval = peers.warm_interval.max(Duration::from_millis(100));
                    if peers.warm && current.config.cache.enabled {
                        let token = current.config.peer_token().to_string();
                        let layout = current.key_layout;
                        for &peer in &peers.peers {
                            crate::cache::peers::warm_from(
                                &current.cache,
                                peer,
                                &token,
                                peers.warm_objects,
                                layout,
                            )
                            .await;
                        }
                    }
                    drop(current);
                    tokio::time::sleep(interval).await;
                }
            });
        });
}
