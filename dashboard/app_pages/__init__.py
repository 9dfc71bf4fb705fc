"""The dashboard pages (thin: they draw widgets and call dashboard.components)."""
