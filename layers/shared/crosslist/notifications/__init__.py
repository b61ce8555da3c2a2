"""Push notifications from eBay and Etsy (issue 19): what they send crosslist, verified before anything is done.

- eBay (`ebay_signature`, `public_keys`, `ebay_api`): the endpoint answers eBay's challenge; each message is
  signed (X-EBAY-SIGNATURE, ECDSA over the body with a key eBay serves by id). MARKETPLACE_ACCOUNT_DELETION
  erases that eBay user's data (`account_deletion`); ORDER_CONFIRMATION imports the seller's orders now (`imports`).
  Each connected eBay account is known by its eBay user id and subscribed to its orders (`ebay_accounts`).
- Etsy: order.paid, signed as Standard Webhooks (verified by crosslist.webhooks.signing, which signs crosslist's own
  outbound webhooks), imports the shop's orders now.
- `inbox`: a notification is acted on once (eBay's notificationId, Etsy's webhook-id), however often it comes.
- `service`: the use cases the handler calls.
"""
