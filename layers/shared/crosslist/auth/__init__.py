"""Who is calling: users authenticate with a JWT issued by the frontend's identity provider."""
