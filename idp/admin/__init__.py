"""The admin console (pages under `/admin/`) and the admin API (`/admin/api/v1/`)."""
