"""Pull mode: receive GREEN API notifications with receiveNotification/deleteNotification."""
