package api_test

import (
	"context"

	"postfach/internal/store"
)

type store_Tx = store.Tx

func createOperator(ctx context.Context, tx *store.Tx, hash string) error {
	_, err := tx.CreateOperator(ctx, store.Operator{Login: "op", DisplayName: "Operator", PasswordHash: hash})
	return err
}
